import os

import pytest
import torch

# Two xdist workers share two cores: one thread each keeps them from fighting.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_test():
    from robust.data import load_dataset

    return load_dataset("digits-m", "test")


@pytest.fixture(scope="session")
def resnet():
    from robust.models import load_model

    return load_model("zoo:digits-m/resnet", device="cpu")
