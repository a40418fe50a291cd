"""robust.testing (assertions, baselines) and the robust pytest plugin, the latter from a throw-away project."""

from __future__ import annotations

import json
import os
from pathlib import Path

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


def _weak(clean_correct: int, n: int = 500) -> testing.Measured:
    """An attack result of a model that gets ``clean_correct`` of ``n`` images right; the attack hits none."""
    from robust.metrics import Counts

    counts = Counts(n=n, clean_correct=clean_correct, adv_correct=clean_correct, success=0, target_hit=0,
                    success_all=0, target_hit_all=0, targeted=True)
    return testing.Measured("untrained", "noise-patch-8pct", "digits-m", n, 0, "k", counts=counts, classes=10)


def test_a_gate_on_a_model_that_gets_nothing_right_fails():
    with pytest.raises(AssertionError, match=r"TCS gate on this model would pass for the wrong reason: 0 "
                                             r"clean-correct images of 500, fewer than min_correct=30: too few"):
        assert_tcs_at_most(_weak(0), 0.45, rule="wilson")
    with pytest.raises(AssertionError, match=r"clean accuracy 0.100 \[0.077, 0.129\] is not above chance \(0.100, "
                                             r"10 classes\)"):
        assert_asr_at_most(_weak(50), 0.45)
    assert_tcs_at_most(_weak(50), 0.45, allow_chance=True)  # opted out
    assert_tcs_at_most(_weak(80), 0.45)  # 16 %: above chance with 95 % confidence
    with pytest.raises(ValueError, match="min_correct=-1 is not valid"):
        assert_tcs_at_most(_weak(80), 0.45, min_correct=-1)


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
    with pytest.raises(ValueError, match=r"preset 'gan-patch-3pct' is unknown \(did you mean gan-patch-8pct.*\); "
                                         r"expected one of"):
        measure(RESNET, "gan-patch-3pct", samples=20, store=store)
    with pytest.raises(ValueError, match=r"did not load.*does not exist"):
        measure("zoo:digits-m/no-such-model", "noise-patch-8pct", samples=20, store=store)


def test_baselines(noise, tmp_path):
    path = tmp_path / "baselines" / "resnet-noise.json"
    previous = testing.set_hooks(testing.Hooks(require_baselines=True))  # as pytest --robust-require-baselines
    try:
        with pytest.raises(AssertionError, match=r"does not exist and --robust-require-baselines is set; record it "
                                                 r"with `pytest --robust-update-baselines .*` and commit it"):
            no_regression(noise, baseline=path)
    finally:
        testing.set_hooks(previous)
    assert not path.exists()
    with pytest.warns(testing.BaselineRecorded, match=r"did not exist: recorded tcs .* commit it"):
        no_regression(noise, baseline=path)  # a first run records it and passes
    recorded = json.loads(path.read_text())
    assert recorded["measure"] == "tcs" and recorded["value"] == noise.counts.tcs and recorded["samples"] == 60
    assert recorded["key"] == "zoo:digits-m/resnet" and recorded["weights"] == noise.weights and noise.weights
    no_regression(noise, baseline=path, tolerance=0.0)
    path.write_text(json.dumps({**recorded, "value": noise.counts.tcs - 0.1}))
    with pytest.raises(AssertionError, match="tcs vs baseline"):
        no_regression(noise, baseline=path, tolerance=0.02)
    for key, other in (("samples", 1000), ("dataset", "cifar10"), ("key", "other-model")):
        path.write_text(json.dumps({**recorded, key: other}))
        with pytest.raises(ValueError, match=rf"recorded with {key}=.*refusing to compare"):
            no_regression(noise, baseline=path)
    path.write_text(json.dumps({k: v for k, v in recorded.items() if k != "key"}))  # recorded before keys
    no_regression(noise, baseline=path)
    with pytest.raises(ValueError, match="key='' is not valid"):
        no_regression(noise, baseline=path, key="")


def test_no_regression_compares_two_versions_of_a_module_under_its_key(tmp_path):
    """v1 and v2 of a user's model (other weights): the baseline is kept under the name, the weights beside it;
    v2, a model at chance, fails for that reason rather than passing as 'improved'."""
    import torch

    from robust.models import load_model

    store, path = tmp_path / "store", tmp_path / "base.json"
    v1 = load_model("zoo:digits-m/resnet", "cpu")
    first = measure(v1, "noise-patch-8pct", samples=60, store=store)
    with pytest.warns(testing.BaselineRecorded):
        no_regression(first, baseline=path, key="mycnn")
    v2 = load_model("zoo:digits-m/resnet", "cpu")
    with torch.no_grad():
        v2.net.get_classifier().weight.mul_(1.01)  # a retrained version: other weights, the same skill
    second = measure(v2, "noise-patch-8pct", samples=60, store=store)
    assert second.model != first.model and second.weights != first.weights
    no_regression(second, baseline=path, key="mycnn", tolerance=0.05)
    with torch.no_grad():
        v2.net.get_classifier().weight.zero_()
        v2.net.get_classifier().bias.copy_(torch.arange(10.0))  # always class 9: 10 % accuracy, TCS 0
    broken = measure(v2, "noise-patch-8pct", samples=60, store=store)
    with pytest.raises(AssertionError, match=r"would pass for the wrong reason: \d+ clean-correct images of 60, "
                                             r"fewer than min_correct=30"):
        no_regression(broken, baseline=path, key="mycnn")


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


@pytest.mark.slow  # a pytest session of a user's project in a subprocess: 18 s on 2 cores
@pytest.mark.subprocess
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
    assert "robust/testing.py" not in result.stdout.str()  # the failure shows the test's line, not our internals
    doc = json.loads(report.read_text())
    assert (doc["assertions"], doc["passed"], doc["failed"]) == (2, 1, 1)
    first, second = doc["records"]
    assert first["test"].endswith("test_resnet_keeps_noise_at_chance") and first["passed"]
    assert second["threshold"] == 0.0 and second["rule"] == "wilson" and not second["passed"]
    assert first["n"] == second["n"] > 0 and first["value"] == second["value"] and len(first["interval"]) == 2


@pytest.mark.subprocess
@pytest.mark.slow  # a pytest session in a subprocess: 23 s on 2 cores
def test_the_ci_guides_snippet_runs(pytester, store):
    """The CI guide as a user follows it: its suite (the Python block) in suites/, run by its GitHub Actions
    lines (the extra they install exists), which write the report."""
    import shlex
    from importlib.metadata import metadata
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "docs" / "guides" / "ci-suites.md").read_text()
    block = readme.split("In GitHub Actions:")[1].split("```yaml")[1].split("```")[0]
    runs = [line.removeprefix("- run: ") for line in block.splitlines() if line.startswith("- run: ")]
    assert runs[0] == 'pip install "robust-suite[test]"'
    assert "test" in metadata("robust-suite").get_all("Provides-Extra")
    args = shlex.split(runs[1])
    assert args[0] == "pytest"
    (pytester.path / "suites").mkdir()
    suite = readme.split("```python\n")[1].split("```")[0]
    (pytester.path / "suites" / "test_gate.py").write_text(suite)
    result = pytester.runpytest_subprocess(*args[1:], "--robust-store", str(store), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert json.loads((pytester.path / "robustness.json").read_text())["passed"] == 2  # the gate and the baseline
    assert (pytester.path / "baselines" / "mixer-gan.json").is_file()


BASELINE_SUITE = '''
import pytest
from robust.testing import assert_tcs_at_most, no_regression

@pytest.mark.robustness
def test_noise_holds(robust_eval):
    assert_tcs_at_most(robust_eval("zoo:digits-m/resnet", "noise-patch-8pct", samples=60), 0.5)

@pytest.mark.robustness
def test_noise_no_worse(robust_eval):
    no_regression(robust_eval("zoo:digits-m/resnet", "noise-patch-8pct", samples=60), baseline="base.json")
'''


def _current_hooks() -> testing.Hooks:
    current = testing.set_hooks(testing.Hooks())
    testing.set_hooks(current)
    return current


@pytest.mark.subprocess
@pytest.mark.slow  # an xdist session in a subprocess: 24 s on 2 cores
def test_xdist_workers_hand_their_records_to_the_report(pytester, store):
    """Under pytest-xdist the workers record the assertions and hand them to the controller's --robust-report;
    --robust-update-baselines reaches the workers too."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_robustness=BASELINE_SUITE)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess("--robust-report", str(report), "--robust-store", str(store),
                                           "--robust-device", "cpu", "-p", "no:cacheprovider", "-n", "1",
                                           "--robust-update-baselines")
    result.assert_outcomes(passed=2)
    assert json.loads((pytester.path / "base.json").read_text())["measure"] == "tcs"
    doc = json.loads(report.read_text())
    assert (doc["assertions"], doc["passed"], doc["failed"]) == (2, 2, 0)
    assert doc["records"][0]["test"].endswith("test_noise_holds") and doc["records"][0]["measure"] == "TCS"
    assert doc["records"][1]["assertion"] == "no regression (baseline recorded)"  # recorded, not compared


def test_an_inner_session_restores_the_hooks(pytester, store, noise):
    """A pytest session run inside another (pytester in-process) sets robust.testing's hooks for its own run and
    gives the outer session's back: --robust-update-baselines does not leak out of it, and a later run compares
    with the baseline it recorded. (``noise``: the cell is measured, and robust's modules imported, out here.)"""
    outer = _current_hooks()
    pytester.makepyfile(test_robustness=BASELINE_SUITE)
    report = pytester.path / "report.json"
    common = ("--robust-report", str(report), "--robust-store", str(store), "--robust-device", "cpu",
              "-p", "no:cacheprovider")
    pytester.runpytest_inprocess(*common, "--robust-update-baselines").assert_outcomes(passed=2)
    assert _current_hooks() is outer and not outer.update_baselines
    recorded = json.loads((pytester.path / "base.json").read_text())
    pytester.runpytest_inprocess(*common).assert_outcomes(passed=2)
    assert _current_hooks() is outer
    doc = json.loads(report.read_text())
    assert (doc["assertions"], doc["passed"]) == (2, 2)
    assert [r["test"].rsplit("::", 1)[1] for r in doc["records"]] == ["test_noise_holds", "test_noise_no_worse"]
    assert doc["records"][1]["measure"] == f"tcs vs baseline {recorded['value']:.3f} (zoo:digits-m/resnet)"


@pytest.mark.subprocess
def test_a_report_that_cannot_be_written_at_the_end_is_kept_elsewhere(pytester):
    """The folder passed the up-front check and then changed under the run: the report is not lost."""
    (pytester.path / "out").mkdir()
    pytester.makepyfile(test_breaks='''
import pathlib, shutil

def test_replaces_the_report_folder_by_a_file():
    shutil.rmtree("out")
    pathlib.Path("out").write_text("not a folder")
''')
    result = pytester.runpytest_subprocess("--robust-report", "out/report.json", "-p", "no:cacheprovider")
    line = next(x for x in result.outlines if "could not be written" in x)
    kept = line.split("the report was kept in ")[1].rstrip(".")
    assert json.loads(Path(kept).read_text())["assertions"] == 0
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    os.remove(kept)


@pytest.mark.subprocess
@pytest.mark.slow  # the snippet's cell: gan-patch on 500 images with its realism, 15-30 s, then two sessions
def test_the_ci_guides_suite_passes_as_pasted(pytester, store):
    """The CI guide's suite, verbatim, in a fresh project: the gate passes and the first run records the baseline
    (a warning says so); the second run compares with it."""
    section = (Path(__file__).parent.parent / "docs" / "guides" / "ci-suites.md").read_text()
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "no_regression(" in snippet and "assert_tcs_at_most(" in snippet
    pytester.makepyfile(test_readme=snippet)
    args = ("--robust-store", str(store), "--robust-device", "cpu", "-p", "no:cacheprovider")
    first = pytester.runpytest_subprocess(*args)
    first.assert_outcomes(passed=1, warnings=1)  # only ours: timm's torch.jit warning is filtered by the plugin
    first.stdout.fnmatch_lines(["*BaselineRecorded*did not exist: recorded tcs*"])
    assert json.loads((pytester.path / "baselines" / "mixer-gan.json").read_text())["key"] == "mixer"
    pytester.runpytest_subprocess(*args, "--robust-require-baselines").assert_outcomes(passed=1)
