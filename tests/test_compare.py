"""robust compare / robust.testing.compare_results: two result files cell by cell, for CI outside pytest."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from robust.cli import app
from robust.testing import compare_results

BOARD = {"title": "t", "dataset": "digits-m", "samples": 500, "seeds": [0],
         "rows": [{"name": "resnet", "attack": "gan-patch-12pct", "targeted": True, "tcs": 0.70,
                   "tcs_interval": [0.66, 0.74], "asr": 0.83, "asr_interval": [0.79, 0.86]},
                  {"name": "resnet", "attack": "pgd-linf-8", "targeted": False, "tcs": None, "tcs_interval": None,
                   "asr": 0.95, "asr_interval": [0.93, 0.97]}],
         "evaluations": [{"name": "resnet", "evaluation": "patch-drop", "area": 0.45, "area_interval": [0.43, 0.47],
                          "lower_is_better": False}],
         "worst_case": [], "failed": []}


def _write(path, doc) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def _changed(edits: dict) -> dict:
    """BOARD with ``{(row index or "eval", key): value}`` changed."""
    doc = copy.deepcopy(BOARD)
    for (i, key), value in edits.items():
        (doc["evaluations"][0] if i == "eval" else doc["rows"][i])[key] = value
    return doc


def test_the_same_board_passes(tmp_path):
    base = _write(tmp_path / "a.json", BOARD)
    changes = compare_results(base, base)
    assert [(c.task, c.measure, c.verdict) for c in changes] == [
        ("gan-patch-12pct", "tcs", "same"), ("pgd-linf-8", "asr", "same"), ("patch-drop", "area", "same")]
    res = CliRunner().invoke(app, ["compare", base, base])
    assert res.exit_code == 0 and "no regression in 3 cells" in res.stdout


def test_a_regression_under_each_rule(tmp_path):
    base = _write(tmp_path / "a.json", BOARD)
    worse = _write(tmp_path / "b.json", _changed({(0, "tcs"): 0.80, (0, "tcs_interval"): [0.76, 0.84]}))
    slightly = _write(tmp_path / "c.json", _changed({(0, "tcs"): 0.72, (0, "tcs_interval"): [0.68, 0.76]}))
    assert compare_results(base, worse)[0].verdict == "regression"
    assert compare_results(base, slightly)[0].verdict == "same"  # the intervals overlap
    assert compare_results(base, slightly, rule="point")[0].verdict == "regression"
    assert compare_results(base, slightly, rule="point", tolerance=0.05)[0].verdict == "same"
    # a curve where higher is better regresses downwards
    lower = _write(tmp_path / "d.json", _changed({("eval", "area"): 0.30, ("eval", "area_interval"): [0.28, 0.32]}))
    assert [c.verdict for c in compare_results(base, lower)] == ["same", "same", "regression"]
    assert compare_results(lower, base)[2].verdict == "improved"
    res = CliRunner().invoke(app, ["compare", base, worse])
    assert res.exit_code == 1 and "1 of 3 cells regressed or are missing" in res.stdout
    doc = json.loads(CliRunner().invoke(app, ["compare", base, worse, "--json"]).stdout)
    assert doc["failed"] == 1 and doc["cells"][0]["verdict"] == "regression"


def test_missing_and_new_cells(tmp_path):
    base = _write(tmp_path / "a.json", BOARD)
    fewer = copy.deepcopy(BOARD)
    fewer["rows"] = fewer["rows"][:1]
    fewer["rows"].append({**BOARD["rows"][0], "name": "vit"})
    changes = compare_results(base, _write(tmp_path / "b.json", fewer))
    assert [(c.model, c.task, c.verdict) for c in changes if c.verdict != "same"] == [
        ("resnet", "pgd-linf-8", "missing"), ("vit", "gan-patch-12pct", "new")]
    assert CliRunner().invoke(app, ["compare", base, str(tmp_path / "b.json")]).exit_code == 1


def test_attack_run_outputs_compare_too(tmp_path):
    run = {"attack": "noise-patch", "model": "zoo:digits-m/resnet", "data": "digits-m", "split": "test", "seed": 0,
           "params": {"seed": 0}, "n": 20, "targeted": False, "asr": 0.5, "asr_interval": [0.3, 0.7]}
    base = _write(tmp_path / "a.json", run)
    (change,) = compare_results(base, _write(tmp_path / "b.json", {**run, "asr": 0.95, "asr_interval": [0.76, 0.99]}))
    assert (change.task, change.measure, change.verdict) == ("noise-patch", "asr", "regression")


@pytest.mark.parametrize(("other", "needle"), [
    ({**BOARD, "samples": 100}, "measured with images=500"),
    ({**BOARD, "dataset": "cifar10"}, "measured with dataset='digits-m'"),
    ([1, 2], "holds a JSON list; expected an object"),
    ({"title": "x"}, "is neither a board's results.json"),
])
def test_other_data_or_foreign_files_are_refused(tmp_path, other, needle):
    base = _write(tmp_path / "a.json", BOARD)
    with pytest.raises(ValueError, match=needle):
        compare_results(base, _write(tmp_path / "b.json", other))
    res = CliRunner().invoke(app, ["compare", base, str(tmp_path / "b.json")])
    assert res.exit_code == 2 and needle.split("'")[0] in res.stderr


def test_bad_options(tmp_path):
    base = _write(tmp_path / "a.json", BOARD)
    with pytest.raises(ValueError, match="rule='exact' is not valid"):
        compare_results(base, base, rule="exact")
    with pytest.raises(ValueError, match="tolerance=2 is not valid"):
        compare_results(base, base, tolerance=2)
    with pytest.raises(ValueError, match="is not a file"):
        compare_results(base, tmp_path / "nope.json")


def test_a_worst_case_over_other_attacks_is_another_cell(tmp_path):
    row = {"name": "resnet", "targeted": True, "tcs": 0.9, "tcs_interval": [0.88, 0.92]}
    one = {**BOARD, "worst_case": [{"name": "worst-case-12pct", "attacks": ["a", "b"], "rows": [row]}]}
    other = {**BOARD, "worst_case": [{"name": "worst-case-12pct", "attacks": ["a", "c"], "rows": [row]}]}
    changes = compare_results(_write(tmp_path / "a.json", one), _write(tmp_path / "b.json", other))
    assert [(c.task, c.verdict) for c in changes if c.task.startswith("worst")] == [
        ("worst-case-12pct over a+b", "missing"), ("worst-case-12pct over a+c", "new")]
