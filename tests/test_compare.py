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
    assert res.exit_code == 1 and "1 of 3 cells regressed, are missing or are too weak to judge" in res.stdout
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


@pytest.mark.parametrize(("doc", "needle"), [
    ({**BOARD, "rows": [1, 2]}, r"rows\[0\] is 1; expected an object"),
    ({**BOARD, "rows": [{"x": 1}], "evaluations": []}, r"rows\[0\].targeted is None"),
    ({**BOARD, "rows": [], "evaluations": []}, "holds no cell"),
    ({**BOARD, "rows": "all"}, "rows is 'all'; expected a list"),
    ({**BOARD, "rows": [{**BOARD["rows"][0], "tcs": "0.7"}]}, r"rows\[0\].tcs is '0.7'"),
    ({**BOARD, "rows": [{**BOARD["rows"][0], "tcs": float("nan")}]}, r"rows\[0\].tcs is nan"),
    ({**BOARD, "rows": [{**BOARD["rows"][0], "tcs_interval": [0.8, 0.6]}]}, r"tcs_interval is \[0.8, 0.6\]"),
    ({**BOARD, "rows": [{**BOARD["rows"][0], "name": ["resnet"]}]}, r"rows\[0\].name is \['resnet'\]"),
    ({**BOARD, "rows": [BOARD["rows"][0], BOARD["rows"][0]]}, r"rows\[1\] repeats the cell"),
    ({**BOARD, "evaluations": [{**BOARD["evaluations"][0], "lower_is_better": "no"}]}, "lower_is_better is 'no'"),
    ({**BOARD, "worst_case": [{"name": "w", "attacks": [3], "rows": []}]}, r"worst_case\[0\].attacks\[0\] is 3"),
    ({"attack": "lavan", "n": 10, "model": "m", "targeted": True, "tcs": 0.5, "params": [1]}, "params is"),
])
def test_a_file_that_cannot_be_read_whole_or_holds_no_cell_fails_the_gate(tmp_path, doc, needle):
    base = _write(tmp_path / "a.json", BOARD)
    bad = _write(tmp_path / "b.json", doc)
    for first, second in ((base, bad), (bad, base)):
        with pytest.raises(ValueError, match=needle):
            compare_results(first, second)
    res = CliRunner().invoke(app, ["compare", base, bad])
    assert res.exit_code == 2 and "b.json" in res.stderr and "Traceback" not in res.output


def test_hostile_json_is_one_line_never_a_traceback(tmp_path):
    base = _write(tmp_path / "a.json", BOARD)
    deep = tmp_path / "deep.json"
    deep.write_text('{"rows": ' + "[" * 100_000 + "]" * 100_000 + "}")
    bad_bytes = tmp_path / "bytes.json"
    bad_bytes.write_bytes(b'{"rows": "\xff\xfe"}')
    for path, needle in ((deep, "nested too deeply"), (bad_bytes, "not valid JSON")):
        with pytest.raises(ValueError, match=needle):
            compare_results(base, path)
        res = CliRunner().invoke(app, ["compare", base, str(path)])
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1


def test_any_json_either_compares_or_is_refused_in_one_sentence(tmp_path_factory):
    """Whatever JSON a results file holds, compare returns verdicts or raises a ValueError; never anything else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.sampled_from(["name", "attack", "targeted", "tcs", "asr",
                                                             "tcs_interval", "rows", "attacks", "evaluation",
                                                             "area", "lower_is_better", "x"]), inner, max_size=6),
                          max_leaves=20)
    row = st.fixed_dictionaries({"name": values, "attack": values, "targeted": values, "tcs": values,
                                 "tcs_interval": values, "asr": values})
    docs = st.fixed_dictionaries({"dataset": st.just("digits-m"), "samples": st.just(500), "seeds": st.just([0]),
                                  "rows": st.lists(row | values, max_size=3) | values,
                                  "worst_case": values, "evaluations": values})
    folder = tmp_path_factory.mktemp("hypothesis")
    base = _write(folder / "a.json", BOARD)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(docs)
    def check(doc):
        path = folder / "b.json"
        path.write_text(json.dumps(doc))
        try:
            changes = compare_results(base, path)
        except ValueError as e:
            assert str(e).startswith(f"results {str(path)!r}") and "\n" not in str(e)
        else:
            assert changes and all(c.verdict in ("regression", "improved", "same", "missing", "new") for c in changes)

    check()


@pytest.mark.parametrize("name", ["[/]", "[exp1]", "[b]x[/b]", "[link=x]m"])
def test_names_from_a_file_print_as_written(tmp_path, name, monkeypatch):
    from robust.cli import base as cli

    doc = _changed({(0, "name"): name})
    a, b = _write(tmp_path / "a.json", doc), _write(tmp_path / "b.json", doc)
    monkeypatch.setattr(cli.console, "_force_terminal", True)  # the table, where rich would read markup
    res = CliRunner().invoke(app, ["compare", a, b])
    assert res.exit_code == 0 and name in res.output
    monkeypatch.setattr(cli.console, "_force_terminal", False)
    res = CliRunner().invoke(app, ["compare", a, b])
    assert res.exit_code == 0 and f"same: {name} / gan-patch-12pct" in res.output


def _run(spec: str, tcs: float, correct: int, n: int = 500) -> dict:
    """An ``attack run --json`` output of model ``spec`` (10 classes) with ``correct`` clean-correct images."""
    from robust.metrics import wilson_interval

    hit = round(tcs * correct)
    return {"attack": "gan-patch-12pct", "model": spec, "data": "digits-m", "split": "test", "n": n, "seed": 0,
            "params": {"area": 0.12, "seed": 0}, "targeted": True, "classes": 10, "clean_correct": correct,
            "tcs": hit / correct, "tcs_interval": list(wilson_interval(hit, correct)), "asr": hit / correct,
            "asr_interval": list(wilson_interval(hit, correct))}


def test_two_versions_of_a_model_compare_as_a_pair_and_a_regression_fails(tmp_path):
    v1, v2 = "file:mycnn_v1.pt?arch=mymodel:small_cnn", "file:mycnn_v2.pt?arch=mymodel:small_cnn"
    old = _write(tmp_path / "v1.json", _run(v1, 0.10, 450))
    same = _write(tmp_path / "v2.json", _run(v2, 0.11, 455))
    worse = _write(tmp_path / "v2-worse.json", _run(v2, 0.40, 450))
    unpaired = compare_results(old, same)
    assert [c.verdict for c in unpaired] == ["missing", "new"]  # two specs: two models, unless paired
    paired = compare_results(old, same, pairs={v1: v2})
    assert [(c.model, c.against, c.verdict) for c in paired] == [(v1, v2, "same")]
    for args in (["--pair", f"{v1}={v2}"], ["--as", "mycnn"]):  # the '=' inside the specs does not confuse --pair
        res = CliRunner().invoke(app, ["compare", old, same, *args])
        assert res.exit_code == 0 and "no regression in 1 cells" in res.stdout, res.output
        res = CliRunner().invoke(app, ["compare", old, worse, *args])
        assert res.exit_code == 1 and "regression: " in res.stdout, res.output
    assert "regression: mycnn / gan-patch-12pct" in res.stdout
    res = CliRunner().invoke(app, ["compare", old, same, "--pair", "nope=other"])
    assert res.exit_code == 2 and "--pair 'nope=other' is not valid; expected OLD=NEW" in res.output


def test_a_model_at_chance_or_with_too_few_correct_images_fails_instead_of_improving(tmp_path):
    v1 = "mymodel:small_cnn"
    old = _write(tmp_path / "v1.json", _run(v1, 0.08, 450))
    chance = _write(tmp_path / "chance.json", _run(v1, 0.0, 50))  # 10 % accuracy: TCS 0 is no achievement
    few = _write(tmp_path / "few.json", _run(v1, 0.0, 12))
    [c] = compare_results(old, chance)
    assert c.verdict == "chance" and "is not above chance (0.100, 10 classes)" in c.why
    assert compare_results(old, chance, allow_chance=True, rule="point")[0].verdict == "improved"
    assert compare_results(old, few)[0].verdict == "too-few"
    assert compare_results(old, few, min_correct=0, allow_chance=True, rule="point")[0].verdict == "improved"
    res = CliRunner().invoke(app, ["compare", old, chance])
    assert res.exit_code == 1 and "chance (clean accuracy 0.100" in res.stdout


def test_a_first_run_without_a_baseline_records_it_or_fails_with_the_command(tmp_path):
    results = _write(tmp_path / "run.json", _run("mymodel:small_cnn", 0.1, 450))
    baseline = tmp_path / "baselines" / "mine.json"
    res = CliRunner().invoke(app, ["compare", str(baseline), results, "--require-baseline"])
    assert res.exit_code == 1 and f"record it with `robust compare {baseline} {results}`" in res.output
    assert not baseline.exists()
    res = CliRunner().invoke(app, ["compare", str(baseline), results])
    assert res.exit_code == 0 and "did not exist: recorded" in res.stdout and "commit it" in res.stdout
    assert json.loads(baseline.read_text()) == json.loads((tmp_path / "run.json").read_text())
    res = CliRunner().invoke(app, ["compare", str(baseline), results])
    assert res.exit_code == 0 and "no regression in 1 cells" in res.stdout
    bad = _write(tmp_path / "bad.json", {"nothing": 1})
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "other.json"), bad])
    assert res.exit_code == 2 and not (tmp_path / "other.json").exists()  # nothing unreadable becomes a baseline
