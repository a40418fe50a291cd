"""What the wheel holds: every package under robust/ is listed in pyproject, and the presets are package data
(no symlink, which a Windows checkout or a wheel built elsewhere would not follow)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """robust-suite's wheel, built from a copy of the source (nothing is written into the checkout)."""
    import shutil

    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in ("robust", "attacks"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.resume.pt"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (built,) = (tmp / "dist").glob("robust_suite-*.whl")
    return built


def test_the_wheel_holds_every_module_and_preset(wheel):
    import shutil

    names = set(zipfile.ZipFile(wheel).namelist())
    presets = {f"robust/attack_presets/{p.name}" for p in (ROOT / "attacks").glob("*.toml")}
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "robust").rglob("*.py")}
    assert presets and presets <= names and modules <= names
    if shutil.which("git") and (ROOT / ".git").exists():  # no symlink is tracked (mode 120000)
        index = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-s"], capture_output=True, text=True).stdout
        assert not [line for line in index.splitlines() if line.startswith("120000")]


DOOR_SUITE = '''
import torch
from torch import nn

from robust import load_model
from robust.testing import assert_tcs_at_most


class MyNet(nn.Module):
    """A user's own module: it normalises its [0, 1] input itself."""

    def __init__(self):
        super().__init__()
        zoo = load_model("zoo:digits-m/resnet", device="cpu")
        self.register_buffer("mean", torch.tensor(zoo.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(zoo.std).view(1, 3, 1, 1))
        self.body = zoo.net

    def forward(self, x):
        return self.body((x - self.mean) / self.std)


def test_my_module_keeps_noise_at_chance(robust_eval):
    result = robust_eval(MyNet(), "noise-patch-8pct", samples=60)
    assert result.counts.clean_accuracy > 0.9
    assert_tcs_at_most(result, 0.5)
'''

DOOR_SCRIPT = '''
import json, subprocess, sys
import robust

assert robust.__file__.startswith(sys.argv[1]), robust.__file__  # the wheel's copy, not the checkout
board = {"dataset": "digits-m", "samples": 500, "seeds": [0],
         "rows": [{"name": "m", "attack": "a", "targeted": True, "tcs": 0.2, "tcs_interval": [0.16, 0.24]}]}
worse = {**board, "rows": [{**board["rows"][0], "tcs": 0.5, "tcs_interval": [0.45, 0.55]}]}
for name, doc in (("base.json", board), ("new.json", worse)):
    open(name, "w").write(json.dumps(doc))
code = subprocess.run([sys.executable, "-m", "robust", "compare", "base.json", "new.json"], capture_output=True,
                      text=True).returncode
assert code == 1, code

import kornia.augmentation as K
import torch
from robust.augment import PatchMixing

mix = PatchMixing(grid=8, p=1.0, soft=True, num_classes=10)
x = K.AugmentationSequential(K.RandomHorizontalFlip(), mix, data_keys=["input"])(torch.rand(8, 3, 32, 32))
target = mix.labels(torch.randint(0, 10, (8,)))
assert x.shape == (8, 3, 32, 32) and target.shape == (8, 10) and torch.allclose(target.sum(1), torch.ones(8))
print("doors ok")
'''


def test_the_three_doors_from_the_wheel(wheel, tmp_path):
    """Only the wheel's robust (unpacked first on the path; the dependencies are this environment's), in a
    project of the user's: an nn.Module gated in pytest, robust compare failing on a regression, Patch Mixing's
    soft targets through AugmentationSequential."""
    import os

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_door.py").write_text(DOOR_SUITE)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = {"cwd": project, "env": env, "capture_output": True, "text": True, "timeout": 600}
    script = subprocess.run([sys.executable, "-c", DOOR_SCRIPT, str(site)], **run)
    assert script.returncode == 0 and "doors ok" in script.stdout, script.stderr[-2000:]
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--robust-device", "cpu",
                            "--robust-store", str(tmp_path / "store"), "test_door.py"], **run)
    assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout[-2000:] + tests.stderr[-2000:]
