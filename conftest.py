import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

pytest_plugins = ["pytester"]  # tests/test_testing.py runs the robust plugin in a throw-away project

# A board runs its cells in this process (tests' boards are small: spawning CPU workers would cost more than it
# saves); the tests of worker processes ask for them. Set here, so subprocesses (the CLI) inherit it.
os.environ.setdefault("ROBUST_WORKERS", "1")

# Two xdist workers share two cores: one thread each keeps them from fighting.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "subprocess: spawns Python (the robust command, a built wheel, pytester's "
                            "subprocess, worker processes): `pytest -m 'not slow and not subprocess'` for a quick "
                            "loop; CI runs them")


@pytest.fixture(scope="session")
def digits_test():
    from robust.data import load_dataset

    return load_dataset("digits-m", "test")


@pytest.fixture(scope="session")
def zoo_accuracy(digits_test):
    """``zoo_accuracy(key)``: a digits-m zoo model and its ``clean_accuracy`` on the 1,000 test images, measured once
    per test process: the zoo's manifest test and the accuracy-bar suite both ask for every model's (2-5 s each).
    (xdist's ``--dist loadgroup`` would send both to one process, but with pytest 9 it groups nothing: its
    ``xdist_group`` suffix no longer reaches the node ids.)"""
    from robust.metrics import clean_accuracy
    from robust.models import load_model

    measured: dict = {}

    def accuracy(key: str):
        if key not in measured:
            model = load_model(f"zoo:{key}", device="cpu")
            measured[key] = model, clean_accuracy(model, digits_test)
        return measured[key]

    return accuracy


@pytest.fixture(scope="session")
def resnet():
    from robust.models import load_model

    return load_model("zoo:digits-m/resnet", device="cpu")


@pytest.fixture(scope="session")
def tcs_and_noise_tcs():
    """``f(model, x, y, result) -> (TCS of the attack result, TCS of a noise patch at the same targets)``."""
    from robust.attacks import make_attack
    from robust.metrics import count

    def measure(model, x, y, res):
        noise = make_attack("noise-patch")(model, x, y, res.target)
        with torch.no_grad():
            clean = model(x)
            return (count(clean, model(res.x_adv), y, res.target).tcs,
                    count(clean, model(noise.x_adv), y, noise.target).tcs)

    return measure


@pytest.fixture(scope="session")
def save_checkpoint(resnet) -> Callable[..., Path]:
    """``save(path, arch=..., name=...) -> path``: the zoo resnet's weights as a user's ``.safetensors`` checkpoint
    (its architecture named by ``arch``: a factory a test may make hostile)."""
    from robust.models import save_weights

    def save(path: Path, arch: str = "robust.models.zoo.archs:resnet?num_classes=10", name: str = "mine") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(path, resnet.net, arch=arch, name=name, num_classes=10, input_size=resnet.input_size,
                     mean=resnet.mean, std=resnet.std, class_names=resnet.class_names)
        return path

    return save


@pytest.fixture(scope="session")
def tree_snapshot() -> Callable[[Path], dict]:
    """``snapshot(root) -> {relative path: "dir" or (mode, mtime_ns, sha256)}``: compare two to prove that nothing
    under ``root`` was created, changed, touched or re-permissioned."""

    def snapshot(root: Path) -> dict:
        return {p.relative_to(root).as_posix(): "dir" if p.is_dir() else
                (p.stat().st_mode, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
                for p in sorted(root.rglob("*"))}

    return snapshot


@pytest.fixture(scope="session")
def write_spec() -> Callable[[Path, dict], Path]:
    """``write(path, table) -> path``: a leaderboard spec TOML holding ``table`` (tables inline, lists of them)."""

    def value(v: object) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    def write(path: Path, table: dict) -> Path:
        path.write_text("\n".join(f"{k} = {value(v)}" for k, v in table.items()) + "\n")
        return path

    return write
