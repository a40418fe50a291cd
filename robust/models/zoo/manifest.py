"""The zoo manifest: one JSON file beside the weights, one entry per trained model."""

from __future__ import annotations

import json
from pathlib import Path

from robust.io import atomic_write_text

ZOO_DIR = Path(__file__).parent / "weights"
MANIFEST = "manifest.json"


def read_manifest(zoo_dir: Path = ZOO_DIR) -> dict[str, dict]:
    path = Path(zoo_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def update_manifest(zoo_dir: Path, key: str, entry: dict) -> None:
    """Insert or replace ``key`` in the manifest, atomically."""
    data = read_manifest(zoo_dir)
    data[key] = entry
    atomic_write_text(Path(zoo_dir) / MANIFEST, json.dumps(dict(sorted(data.items())), indent=2) + "\n")
