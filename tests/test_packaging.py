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


def test_the_wheel_holds_every_module_and_preset(tmp_path):
    """Built from a copy of the source (nothing is written into the checkout): every module and preset is in it."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    for name in ("robust", "attacks"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.resume.pt"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("robust_suite-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = {f"robust/attack_presets/{p.name}" for p in (ROOT / "attacks").glob("*.toml")}
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "robust").rglob("*.py")}
    assert presets and presets <= names and modules <= names
    if shutil.which("git") and (ROOT / ".git").exists():  # no symlink is tracked (mode 120000)
        index = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-s"], capture_output=True, text=True).stdout
        assert not [line for line in index.splitlines() if line.startswith("120000")]
