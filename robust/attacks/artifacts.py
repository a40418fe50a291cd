"""Trained attack artefacts shipped with the package (gan-patch generators, universal patches for the zoo).

Each lives in ``robust/attacks/weights`` as ``NAME.safetensors`` + ``.json`` with an entry in ``manifest.json``
(victims, data, area, the command that made it and the TCS measured on the test split). They are named
``zoo:DATASET/MODEL/ATTACK-Npct`` wherever a checkpoint is accepted, e.g.
``robust attack run gan-patch --model zoo:digits-m/resnet --checkpoint zoo:digits-m/resnet/gan-patch-8pct``.
"""

from __future__ import annotations

from pathlib import Path

from robust.models.zoo.manifest import read_manifest, update_manifest

WEIGHTS_DIR = Path(__file__).parent / "weights"


def artifact_name(data: str, victims: list[str], attack: str, area: float) -> str:
    """``DATASET/MODEL/ATTACK-Npct`` for zoo victims (models joined by ``+`` for an ensemble)."""
    models = []
    for spec in victims:
        prefix = f"zoo:{data}/"
        if not spec.startswith(prefix):
            raise ValueError(f"victim {spec!r} is not a {data} zoo model; expected {prefix}MODEL to publish.")
        models.append(spec.removeprefix(prefix))
    return f"{data}/{'+'.join(models)}/{attack}-{round(area * 100):g}pct"


def artifact_path(name: str) -> Path:
    return WEIGHTS_DIR / (name.replace("/", "-") + ".safetensors")


def list_artifacts() -> dict[str, dict]:
    return read_manifest(WEIGHTS_DIR)


def resolve_checkpoint(text: str | Path) -> Path:
    """A checkpoint path, or ``zoo:NAME`` of a shipped artefact."""
    text = str(text)
    if not text.startswith("zoo:"):
        return Path(text)
    name = text.removeprefix("zoo:")
    known = list_artifacts()
    if name not in known:
        raise ValueError(f"checkpoint {text!r} is not a shipped artefact; expected one of "
                         f"{sorted('zoo:' + k for k in known)} or a file path.")
    return artifact_path(name)


def record_artifact(name: str, entry: dict) -> None:
    update_manifest(WEIGHTS_DIR, name, entry)
