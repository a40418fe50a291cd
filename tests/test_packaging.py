"""What the wheel holds: every package under robust/ is listed in pyproject, and the presets are package data
(no symlink, which a Windows checkout or a wheel built elsewhere would not follow)."""

from __future__ import annotations

from pathlib import Path

from robust.presets import list_presets, shipped_presets_dir, tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "robust").rglob("__init__.py")}
    assert listed == found | {"robust.attack_presets"}


def test_presets_come_from_the_attacks_folder_without_a_link():
    assert not any(p.is_symlink() for p in (ROOT / "robust").rglob("*"))
    assert shipped_presets_dir().resolve() == (ROOT / "attacks").resolve()  # an editable install maps it there
    assert {p.stem for p in (ROOT / "attacks").glob("*.toml")} <= set(list_presets())
