"""Issue 27, item 4: one vocabulary. A preset name works wherever a method name does, every unknown name gets a
did-you-mean, a method's default means what its presets mean, and budgets are written as fractions."""

import json

import pytest
from typer.testing import CliRunner

from robust.attacks import make_attack
from robust.cli import app
from robust.data import load_dataset
from robust.models.specs import parse_value
from robust.presets import list_presets, load_preset, method_preset


def test_make_attack_takes_a_preset_with_its_parameters_and_overrides():
    atk = make_attack("lavan-12pct", steps=5)
    preset = load_preset("lavan-12pct")
    assert (atk.steps, atk.area, atk.targeted) == (5, preset.params["area"], True)
    assert make_attack("noise-patch-12pct").targeted and make_attack("noise-patch-12pct").area == 0.12
    with pytest.raises(ValueError, match=r"'patch-drop' is an evaluation preset; expected an attack"):
        make_attack("patch-drop")


def test_every_attack_preset_means_what_its_method_defaults_to():
    """``make_attack("noise-patch")`` is as targeted as the preset ``noise-patch-12pct``, for every shipped one."""
    for name in list_presets():
        task = load_preset(name)
        if task.kind == "attack":
            assert make_attack(task.method).targeted == task.targeted, name


@pytest.mark.parametrize(("name", "hint"), [("lavan-12pcx", "lavan-12pct"), ("lavn", "lavan"),
                                            ("noise-pach-12pct", "noise-patch-12pct")])
def test_an_unknown_attack_suggests_methods_and_presets(name, hint):
    with pytest.raises(ValueError, match=rf"attack {name!r} is unknown \(did you mean [^)]*{hint}[^)]*\); expected a "
                                         r"method \(gan-patch, lavan, lp, .*\) or an attack preset"):
        make_attack(name)


def test_an_unknown_parameter_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"attack 'lavan' does not take the parameter 'stepz' \(did you mean steps"
                                         r"[^)]*\); expected some of \['adaptive', 'area', .*'steps'") as e:
        make_attack("lavan", stepz=3)
    assert "stepz" not in str(e.value).split("expected some of")[1]  # the valid ones only


def test_presets_methods_data_and_keys_suggest_the_close_names():
    with pytest.raises(ValueError, match=r"preset 'lavan' is unknown: lavan is a method, not a preset; expected a "
                                         r"preset, e.g. lavan-12pct, lavan-8pct, lavan-ref-12pct"):
        load_preset("lavan")
    with pytest.raises(ValueError, match=r"preset 'selectivty' is unknown \(did you mean selectivity\?\)"):
        load_preset("selectivty")
    with pytest.raises(ValueError, match=r"dataset 'digit-m' is unknown \(did you mean digits-m\?\)"):
        load_dataset("digit-m")
    with pytest.raises(ValueError, match=r"evaluation 'patch-dorp' is unknown \(did you mean patch-drop"):
        method_preset("patch-dorp", "evaluation")


@pytest.mark.parametrize(("text", "value"), [("8/255", 8 / 255), ("1/2", 0.5), (" 0.5 / 2 ", 0.25), ("-1/4", -0.25)])
def test_fractions_are_numbers(text, value):
    assert parse_value(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["1/0", "a/b", "8/255/2"])
def test_what_is_not_a_fraction_stays_text(text):
    assert parse_value(text) == text


def test_the_cli_takes_a_budget_as_a_fraction():
    res = CliRunner().invoke(app, ["attack", "run", "pgd-linf-8", "--model", "zoo:digits-m/resnet", "--samples", "4",
                                   "--param", "eps=4/255", "--param", "steps=1", "--param", "restarts=1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["params"]["eps"] == pytest.approx(4 / 255)


def test_presets_show_says_everything_a_preset_sets_and_how_to_run_it():
    res = CliRunner().invoke(app, ["presets", "show", "noise-patch-12pct", "--json"])
    doc = json.loads(res.stdout)
    assert doc["method"] == "noise-patch" and doc["targeted"] is True and doc["params"]["area"] == 0.12
    assert "seed" not in doc["method_defaults"] and "area" not in doc["method_defaults"]
    assert doc["command"] == "robust attack run noise-patch-12pct --model SPEC"
    res = CliRunner().invoke(app, ["presets", "show", "patch-drop"])
    assert res.exit_code == 0 and "robust occlusion run patch-drop --model SPEC" in res.stdout
    res = CliRunner().invoke(app, ["presets", "show", "lavan-12pcx"])
    assert res.exit_code == 2 and "did you mean lavan-12pct" in res.output
    assert doc["shipped_for"] is None  # not a trained attack


def test_presets_show_names_the_models_a_trained_preset_has_a_shipped_artifact_for():
    def shipped(preset: str) -> list[str]:
        return json.loads(CliRunner().invoke(app, ["presets", "show", preset, "--json"]).stdout)["shipped_for"]

    assert shipped("gan-patch-stream-12pct") == ["zoo:digits-m/resnet"]  # its recipe: not gan-patch-12pct's models
    assert "zoo:digits-m/vit-pm" in shipped("gan-patch-12pct") and shipped("gan-patch-8pct") == []


def test_occlusion_run_takes_an_evaluation_preset(tmp_path):
    plot = tmp_path / "drop.png"
    res = CliRunner().invoke(app, ["occlusion", "run", "patch-drop", "--model", "zoo:digits-m/resnet", "--samples",
                                   "8", "--seeds", "1", "--param", "levels=[0,0.5]", "--plot", str(plot), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["evaluation"] == "patch-drop" and doc["x"] == [0, 0.5] and plot.is_file()
    res = CliRunner().invoke(app, ["occlusion", "run", "lavan-12pct", "--model", "zoo:digits-m/resnet"])
    assert res.exit_code == 2 and "'lavan-12pct' is an attack preset; expected an evaluation" in res.output


def test_a_spec_table_naming_a_preset_as_its_method_says_how_to_write_it():
    from robust.runner import parse_spec

    with pytest.raises(ValueError, match=r"attack 'lavan-12pct' is a preset, not a method; expected \{ preset = "
                                         r"'lavan-12pct', name = \.\.\."):
        parse_spec({"dataset": "digits-m", "models": ["zoo:digits-m/resnet"],
                    "attacks": [{"name": "x", "attack": "lavan-12pct", "params": {"steps": 5}}]})
