"""``import robust``: the front doors are re-exported lazily (PEP 562), so the import itself stays cheap."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import robust

HOMES = {"load_model": "robust.models", "Backbone": "robust.models", "load_dataset": "robust.data",
         "make_attack": "robust.attacks", "evaluate": "robust.attacks", "PatchMixing": "robust.augment",
         "run_evaluation": "robust.evaluations", "measure": "robust.testing", "run_board": "robust.runner",
         "render": "robust.leaderboard", "InputError": "robust.checks"}


@pytest.mark.subprocess
def test_import_robust_loads_nothing_heavy():
    code = "import sys, robust; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('robust.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.subprocess
def test_the_cli_and_the_checks_do_not_import_torch():
    """``robust --help`` and a bad option answer without loading torch; every module may raise ``InputError``."""
    code = "import sys, robust.cli, robust.checks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.subprocess
def test_the_pytest_plugin_does_not_import_torch():
    """pytest loads the plugin in every session of the environment: registering it must stay cheap."""
    code = "import sys, robust.pytest_plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_front_door_is_the_modules_own(name):
    assert getattr(robust, name) is getattr(importlib.import_module(HOMES[name]), name)


def test_all_and_dir_name_the_front_doors():
    assert set(robust.__all__) == {*HOMES, "__version__"}
    assert set(robust.__all__) <= set(dir(robust))
    assert isinstance(robust.__version__, str) and robust.__version__.count(".") >= 2
    with pytest.raises(AttributeError, match="module 'robust' has no attribute 'load_modle'"):
        robust.load_modle  # noqa: B018
