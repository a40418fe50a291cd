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


@pytest.mark.subprocess
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


@pytest.mark.slow  # the wheel unpacked in a project of its own, three doors in subprocesses: 18 s on 2 cores
@pytest.mark.subprocess
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


USER_MODEL = '''
"""A user's own 32-px CNN: a plain module that normalises its [0, 1] input itself and says no input size."""
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).parent


class MyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        from robust.models.zoo.archs import resnet

        self.register_buffer("mean", torch.tensor([0.467, 0.377, 0.342]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.316, 0.259, 0.269]).view(1, 3, 1, 1))
        self.body = resnet(num_classes=10)

    def forward(self, x):
        return self.body((x - self.mean) / self.std)


def small_cnn():
    """The architecture, for file:WEIGHTS?arch=mymodel:small_cnn."""
    return MyCNN()


def released():
    """Version 1 as the team ships it: the architecture with its weights."""
    net = MyCNN()
    net.load_state_dict(torch.load(HERE / "mycnn_v1.pt", weights_only=True))
    return net
'''

USER_SETUP = '''
import torch
from robust import load_model
from mymodel import MyCNN

for name, zoo in (("v1", "resnet-pm"), ("v2", "resnet")):  # v2: less robust to occlusion than v1
    net = MyCNN()
    net.body.load_state_dict(load_model(f"zoo:digits-m/{zoo}", device="cpu").net.state_dict())
    torch.save(net.state_dict(), f"mycnn_{name}.pt")
    if name == "v2":  # a broken release: always class 9
        with torch.no_grad():
            net.body.get_classifier().weight.zero_()
            net.body.get_classifier().bias.copy_(torch.arange(10.0))
        torch.save(net.state_dict(), "mycnn_chance.pt")
'''

USER_GATE = '''
import pytest
import torch
from robust.testing import assert_asr_at_most, no_regression
from mymodel import MyCNN

NOISE = {"preset": "noise-patch-12pct", "name": "noise-untargeted", "params": {"targeted": False}}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_occlusion_noise_does_not_get_worse(robust_eval, version):
    net = MyCNN()
    net.load_state_dict(torch.load(f"mycnn_{version}.pt", weights_only=True))
    result = robust_eval(net, NOISE, samples=300)
    assert_asr_at_most(result, 0.9)
    no_regression(result, baseline="baselines/noise.json", key="mycnn", tolerance=0.05)
'''


@pytest.mark.subprocess
@pytest.mark.slow  # eight processes and a board: about a minute and a half on 2 cores
def test_a_users_own_model_walks_every_door_from_the_wheel(wheel, tmp_path):
    """Issue 27's walk, from the built wheel, in a folder of the user's: a 32-px factory model with no declared size
    by spec, by file: and as an object; `attack run` through the console script (the folder is importable without
    PYTHONPATH); a version-to-version `robust compare` that fails on a regression and on a chance-level model; a
    board that shows no absolute path; a pytest gate that records its baseline, then fails v2 on a regression."""
    import json
    import os

    site, project, bin_dir = tmp_path / "site", tmp_path / "project", tmp_path / "bin"
    zipfile.ZipFile(wheel).extractall(site)
    project.mkdir()
    bin_dir.mkdir()
    (project / "mymodel.py").write_text(USER_MODEL)
    (bin_dir / "robust").write_text("import sys\nfrom robust.cli import main\nsys.exit(main())\n")  # as the script
    env = {**os.environ, "PYTHONPATH": str(site), "ROBUST_CACHE": str(tmp_path / "cache")}

    def run(*args: str, code: int = 0, script: bool = True) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(bin_dir / "robust"), *args] if script else [sys.executable, *args]
        done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == code, f"{args}: exit {done.returncode}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
        return done

    run("-c", USER_SETUP, script=False)
    untargeted = ("--param", "targeted=false", "--samples", "300", "--json")
    for out, model in (("v1.json", "mymodel:released"), ("v2.json", "file:mycnn_v2.pt?arch=mymodel:small_cnn"),
                       ("chance.json", "file:mycnn_chance.pt?arch=mymodel:small_cnn")):
        done = run("attack", "run", "noise-patch-12pct", "--model", model, *untargeted)
        (project / out).write_text(done.stdout.strip().splitlines()[-1])
    assert json.loads((project / "v1.json").read_text())["n"] == 300
    assert "no regression in 1 cells" in run("compare", "v1.json", "v1.json").stdout
    assert "regression: mycnn" in run("compare", "v1.json", "v2.json", "--as", "mycnn", code=1).stdout
    weak = run("compare", "v1.json", "chance.json", "--as", "mycnn", code=1).stdout  # 26 of 300 right: class 9's
    assert "too-few (" in weak or "chance (clean accuracy" in weak

    elsewhere = tmp_path / "weights"  # outside the spec's folder: shown by its name only
    elsewhere.mkdir()
    (elsewhere / "mycnn_v2.pt").write_bytes((project / "mycnn_v2.pt").read_bytes())
    (project / "board.toml").write_text(
        'title = "my CNN, v1 against v2"\ndataset = "digits-m"\nsamples = 100\n'
        f'models = [{{ spec = "mymodel:released", name = "v1" }}, {{ spec = "file:{elsewhere}/mycnn_v2.pt?arch='
        'mymodel:small_cnn", name = "v2", input_size = [3, 32, 32] }]\nattacks = ["noise-patch-12pct"]\n')
    run("leaderboard", "run", "board.toml")
    for name in ("README.md", "index.html", "results.json", "results.csv"):
        text = (project / "board" / name).read_text()
        assert "pytest-of" not in text, name  # no absolute path of the user's (escaped for Markdown or not)
    readme = (project / "board" / "README.md").read_text()
    assert "file:…/mycnn_v2.pt" in readme and "robust leaderboard run board.toml" in readme
    assert "| v2 | file:…/mycnn\\_v2.pt?arch=mymodel:small\\_cnn" in readme and "| 0.32 M |" in readme

    (project / "test_gate.py").write_text(USER_GATE)
    gate = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "--robust-device", "cpu", "--robust-store",
               str(tmp_path / "store"), "test_gate.py", script=False, code=1)
    assert "1 failed, 1 passed" in gate.stdout and "BaselineRecorded" in gate.stdout
    assert "asr vs baseline" in gate.stdout and "(mycnn, weights" in gate.stdout  # v2 against v1, by the key
