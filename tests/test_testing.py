"""robust.testing (assertions, baselines) and the robust pytest plugin, the latter from a throw-away project."""

from __future__ import annotations

import json

import pytest

from robust import testing
from robust.testing import (
    assert_accuracy_at_least,
    assert_asr_at_most,
    assert_auc_at_least,
    assert_tcs_at_most,
    measure,
    no_regression,
)

RESNET = "zoo:digits-m/resnet"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def noise(store):
    return measure(RESNET, "noise-patch-8pct", samples=60, store=store)


def test_measure_runs_once_then_reuses_the_cell(store, noise):
    assert not noise.cached and noise.counts.n == 60 and noise.counts.targeted
    again = measure(RESNET, "noise-patch-8pct", samples=60, store=store)
    assert again.cached and again.key == noise.key and again.counts == noise.counts
    curve = measure(RESNET, {"preset": "patch-drop", "name": "drop", "params": {"seeds": 1, "levels": [0, 0.5]}},
                    samples=40, store=store)
    assert curve.curve.x == [0.0, 0.5] and curve.counts is None


def test_rules_and_one_line_messages(noise):
    tcs, (lo, hi) = noise.counts.tcs, noise.counts.interval("tcs")
    assert_tcs_at_most(noise, tcs)  # point: the estimate itself passes
    with pytest.raises(AssertionError, match=r"upper Wilson bound") as err:
        assert_tcs_at_most(noise, tcs, rule="wilson")  # ... but not with 95 % confidence
    message = str(err.value)
    assert "\n" not in message and f"n={noise.counts.clean_correct}" in message and "rule wilson" in message
    assert_tcs_at_most(noise, min(1.0, hi + 1e-9), rule="wilson")
    assert_accuracy_at_least(noise, noise.counts.clean_accuracy)
    with pytest.raises(AssertionError, match=r"robust accuracy .* < 1.0 under rule point"):
        assert_accuracy_at_least(noise, 1.0, which="robust")
    with pytest.raises(AssertionError, match=r"ASR"):
        assert_asr_at_most(noise, 0.0)
    assert lo <= tcs <= hi


@pytest.mark.parametrize("threshold", [-0.1, 1.5, True, "0.2"])
def test_threshold_outside_unit_interval(noise, threshold):
    with pytest.raises(ValueError, match=r"threshold=.* is not valid; expected a number in"):
        assert_tcs_at_most(noise, threshold)


def test_wrong_kind_of_result(noise, store):
    with pytest.raises(ValueError, match="expected an evaluation"):
        assert_auc_at_least(noise, 0.5)
    with pytest.raises(ValueError, match="rule='exact' is not valid"):
        assert_tcs_at_most(noise, 0.5, rule="exact")


def test_unknown_attack_or_model(store):
    with pytest.raises(ValueError, match="preset 'gan-patch-3pct' is unknown; expected one of"):
        measure(RESNET, "gan-patch-3pct", samples=20, store=store)
    with pytest.raises(ValueError, match=r"did not load.*does not exist"):
        measure("zoo:digits-m/no-such-model", "noise-patch-8pct", samples=20, store=store)


def test_baselines(noise, tmp_path, monkeypatch):
    path = tmp_path / "baselines" / "resnet-noise.json"
    with pytest.raises(ValueError, match=r"does not exist; record it with `pytest --robust-update-baselines`"):
        no_regression(noise, baseline=path)
    monkeypatch.setitem(testing.UPDATE_BASELINES, "on", True)
    no_regression(noise, baseline=path)
    monkeypatch.setitem(testing.UPDATE_BASELINES, "on", False)
    recorded = json.loads(path.read_text())
    assert recorded["measure"] == "tcs" and recorded["value"] == noise.counts.tcs and recorded["samples"] == 60
    no_regression(noise, baseline=path, tolerance=0.0)
    path.write_text(json.dumps({**recorded, "value": noise.counts.tcs - 0.1}))
    with pytest.raises(AssertionError, match="tcs vs baseline"):
        no_regression(noise, baseline=path, tolerance=0.02)
    for key, other in (("samples", 1000), ("dataset", "cifar10")):
        path.write_text(json.dumps({**recorded, key: other}))
        with pytest.raises(ValueError, match=rf"recorded with {key}=.*refusing to compare"):
            no_regression(noise, baseline=path)


SUITE = '''
import pytest
from robust.testing import assert_tcs_at_most

@pytest.mark.robustness
def test_resnet_keeps_noise_at_chance(robust_eval):
    assert_tcs_at_most(robust_eval("zoo:digits-m/resnet", "noise-patch-8pct", samples=60), 0.5)

@pytest.mark.robustness
def test_resnet_is_unbreakable(robust_eval):
    assert_tcs_at_most(robust_eval("zoo:digits-m/resnet", "noise-patch-8pct", samples=60), 0.0, rule="wilson")

@pytest.mark.gpu
def test_needs_a_gpu():
    pass

def test_loaders_are_session_cached(robust_model, robust_data):
    assert robust_model("zoo:digits-m/resnet") is robust_model("zoo:digits-m/resnet")
    assert len(robust_data("digits-m")) == 1000 and robust_data() is robust_data("digits-m", "test")
'''


def test_a_users_project(pytester, store):
    """The plugin as a user meets it: installed robust-suite, a 10-line suite in a project of their own."""
    import torch

    pytester.makepyfile(test_robustness=SUITE)
    report = pytester.path / "robustness.json"
    result = pytester.runpytest_subprocess("--robust-report", str(report), "--robust-store", str(store),
                                           "--robust-device", "cpu", "-p", "no:cacheprovider")
    gpu = torch.cuda.is_available()
    result.assert_outcomes(passed=3 if gpu else 2, failed=1, skipped=0 if gpu else 1)
    result.stdout.fnmatch_lines(["*AssertionError: TCS * (n=*) > 0.0 under rule wilson (upper Wilson bound *)*"])
    doc = json.loads(report.read_text())
    assert (doc["assertions"], doc["passed"], doc["failed"]) == (2, 1, 1)
    first, second = doc["records"]
    assert first["test"].endswith("test_resnet_keeps_noise_at_chance") and first["passed"]
    assert second["threshold"] == 0.0 and second["rule"] == "wilson" and not second["passed"]
    assert first["n"] == second["n"] > 0 and first["value"] == second["value"] and len(first["interval"]) == 2
