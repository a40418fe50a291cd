import os

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
