"""Issue 27, item 1: a model of the user's says its input size wherever it is named (spec query, spec table, CLI),
a factory's Backbone keeps its size under ``file:?arch=``, a source that does not say takes the data's size, and
the robust command imports factories from the current folder."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robust.checks import check_matches
from robust.data import load_dataset
from robust.models import load_model, parse_input_size, with_input_size
from robust.runner.spec import parse_spec

FACTORY = '''
import torch
from torch import nn


def small_cnn(num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 16 * 16, num_classes))


def small_backbone():
    from robust import Backbone
    return Backbone(small_cnn(), name="small", input_size=(3, 32, 32), mean=(0.5, 0.5, 0.5), std=(0.25,) * 3)
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's folder: ``usermodel.py`` with two factories and ``mycnn.pt`` (plain weights), importable."""
    (tmp_path / "usermodel.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("usermodel", None)
    import usermodel

    torch.save(usermodel.small_cnn().state_dict(), tmp_path / "mycnn.pt")
    yield tmp_path
    sys.modules.pop("usermodel", None)


@pytest.mark.parametrize(("text", "size"), [("3x32x32", (3, 32, 32)), ("32x24", (3, 32, 24)), ("32", (3, 32, 32)),
                                            (32, (3, 32, 32)), ([3, 40, 40], (3, 40, 40)), ("3X8X8", (3, 8, 8))])
def test_input_sizes_are_read_in_every_usual_form(text, size):
    assert parse_input_size(text) == size


@pytest.mark.parametrize("text", ["", "3x", "1x32x32", "0", "axb", [3.5, 4], True, "3x32x32x32", None])
def test_a_bad_input_size_names_the_value_and_the_form(text):
    with pytest.raises(ValueError, match=r"input_size=.* is not valid; expected .*3x32x32|expected 3 channels"):
        parse_input_size(text)


def test_with_input_size_replaces_a_size_the_spec_has():
    assert with_input_size("file:a.pt?arch=m:f&input_size=3x8x8", "32") == "file:a.pt?arch=m:f&input_size=3x32x32"


def test_a_plain_factory_module_takes_the_size_it_is_given_by_spec_or_by_the_data(project):
    assert load_model("usermodel:small_cnn?input_size=3x32x32", "cpu").input_size == (3, 32, 32)
    assert load_model("usermodel:small_cnn", "cpu", input_size=(3, 32, 32)).input_size == (3, 32, 32)
    pt = project / "mycnn.pt"
    assert load_model(f"file:{pt}?arch=usermodel:small_cnn", "cpu", input_size=(3, 32, 32)).input_size == (3, 32, 32)
    assert load_model(f"file:{pt}?arch=usermodel:small_cnn&input_size=32", "cpu").input_size == (3, 32, 32)


def test_a_factory_backbone_keeps_its_size_and_normalisation_under_file_arch(project):
    model = load_model(f"file:{project / 'mycnn.pt'}?arch=usermodel:small_backbone", "cpu")
    assert (model.input_size, model.mean, model.std) == ((3, 32, 32), (0.5,) * 3, (0.25,) * 3)
    assert model.name == "file:mycnn.pt"  # the weights' file names it, not the factory


def test_a_spec_input_size_overrides_what_the_source_says_and_is_checked_by_a_forward(project):
    with pytest.raises(ValueError, match=r"cannot take images of size \(3, 40, 40\)"):
        load_model("usermodel:small_backbone?input_size=40", "cpu")  # its Linear is built for 32 px
    with pytest.raises(ValueError, match=r"model spec 'usermodel:small_cnn\?input_size=big': input_size='big' is "
                                         r"not valid"):
        load_model("usermodel:small_cnn?input_size=big", "cpu")


def test_a_board_model_table_says_its_input_size(project):
    spec = parse_spec({"dataset": "digits-m", "models": [
        {"spec": f"file:{project / 'mycnn.pt'}?arch=usermodel:small_cnn", "name": "mine", "input_size": [3, 32, 32]}],
        "attacks": ["noise-patch-12pct"]})
    assert spec.models[0].spec.endswith("&input_size=3x32x32") and spec.models[0].name == "mine"
    with pytest.raises(ValueError, match=r"spec: model 'usermodel:small_cnn': input_size=\[3, 32\] is not valid|"
                                         r"input_size='x' is not valid"):
        parse_spec({"dataset": "digits-m", "models": [{"spec": "usermodel:small_cnn", "input_size": "x"}],
                    "attacks": ["noise-patch-12pct"]})


def test_a_size_mismatch_on_fixed_size_data_does_not_say_resize_the_data(project):
    net = load_model("zoo:digits-m/resnet", "cpu")
    net.input_size = (3, 224, 224)
    with pytest.raises(ValueError, match=r"takes \?input_size=3x32x32 in its spec.*model table\)\.$") as e:
        check_matches(net, load_dataset("digits-m", "test"))
    assert "resize the data" not in str(e.value)


def _robust_cli() -> str:
    return str(Path(sys.executable).with_name("robust"))


@pytest.mark.subprocess
def test_the_robust_command_imports_a_factory_from_the_current_folder_at_the_datas_size(project):
    """The console script, not ``python -m``: its sys.path does not hold the current folder unless robust adds it.
    The plain module says no size, so it takes digits-m's 32 px (``--input-size`` is the spec's query: tested above).
    """
    done = subprocess.run([_robust_cli(), "attack", "run", "noise-patch-12pct", "--model",
                           "file:mycnn.pt?arch=usermodel:small_cnn", "--samples", "8", "--json"],
                          cwd=project, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    assert '"n": 8' in done.stdout


def test_cli_input_size_and_factory_typos_are_one_line(project):
    from typer.testing import CliRunner

    from robust.cli import app

    res = CliRunner().invoke(app, ["attack", "run", "noise-patch-12pct", "--model", "usermodel:small_cnn",
                                   "--input-size", "3x3x", "--samples", "4"])
    assert res.exit_code == 2 and "--input-size='3x3x' is not valid; expected an image size" in res.output
    res = CliRunner().invoke(app, ["attack", "run", "noise-patch-12pct", "--model", "usermodel:small_cn",
                                   "--samples", "4"])
    assert res.exit_code == 2 and "has no callable 'small_cn' (did you mean small_cnn" in res.output
