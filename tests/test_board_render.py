"""Rendering reads only the store (the plan each run records), rows are typed, each format is one writer, and an
evaluation's direction is its own."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest
import torch

from robust import leaderboard, registry
from robust.cli import main
from robust.runner import Store, parse_spec, plan_id, run_board

RESNET = "zoo:digits-m/resnet"
NOISE = {"name": "noise", "attack": "noise-patch", "params": {"area": 0.08}}
DROP = {"name": "drop", "evaluation": "patch-drop", "params": {"seeds": 1, "levels": [0.0, 0.3, 0.6]}}
SMALL = {"dataset": "digits-m", "samples": 20, "batch_size": 20, "models": [{"spec": RESNET, "name": "resnet"}],
         "attacks": [NOISE]}


def test_render_needs_no_model_only_the_store(save_checkpoint, tmp_path, monkeypatch):
    ckpt = save_checkpoint(tmp_path / "mine.safetensors")
    spec = parse_spec({**SMALL, "models": [{"spec": f"file:{ckpt}", "name": "mine"}], "evaluations": [DROP]})
    assert run_board(spec, tmp_path / "out").ran == 2
    ckpt.unlink()  # the model is gone, and nothing may load or plan anything

    def forbidden(*args, **kwargs):
        raise AssertionError("render loaded a model or planned")

    import robust.runner

    monkeypatch.setattr(robust.runner, "plan", forbidden)
    monkeypatch.setattr(robust.runner.cache, "load_model_cached", forbidden)
    monkeypatch.setattr(robust.runner.cache, "load_dataset_cached", forbidden)
    written = leaderboard.render(spec, tmp_path / "out")
    assert "| 1 | mine |" in written["md"].read_text()
    assert [r["name"] for r in json.loads(written["json"].read_text())["evaluations"]] == ["mine"]


def test_a_spec_not_run_into_the_folder_is_refused_in_one_line(tmp_path, capsys):
    spec = parse_spec(SMALL)
    run_board(spec, tmp_path / "out")
    changed = parse_spec({**SMALL, "samples": 10})
    with pytest.raises(ValueError, match=r"has no run of this spec .* `robust leaderboard run SPEC`"):
        leaderboard.render(changed, tmp_path / "out")
    toml = tmp_path / "board.toml"
    toml.write_text('dataset = "digits-m"\nsamples = 10\nmodels = ["zoo:digits-m/resnet"]\n'
                    'attacks = ["noise-patch-8pct"]\n')
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "render", str(toml), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and f"leaderboard run {toml}`" in err


def test_plan_id_covers_what_keys_and_names_depend_on_and_loads_nothing(monkeypatch):
    import robust.runner.cache as cache

    monkeypatch.setattr(cache, "load_model_cached", None)  # plan_id must not need them
    monkeypatch.setattr(cache, "load_dataset_cached", None)
    base = {**SMALL, "attacks": [NOISE, {**NOISE, "name": "noise-4", "params": {"area": 0.04}}],
            "models": [{"spec": RESNET, "name": "resnet"}, {"spec": "zoo:digits-m/vit", "name": "vit"}]}
    ident = plan_id(parse_spec(base))
    assert plan_id(parse_spec(base)) == ident
    reordered = {**base, "models": base["models"][::-1], "attacks": base["attacks"][::-1]}
    assert plan_id(parse_spec({**reordered, "title": "another title", "device": "cpu"})) == ident
    changes = [{"samples": 10}, {"seeds": [1]}, {"batch_size": 10}, {"train_missing": False}, {"dataset": "other"},
               {"models": [{"spec": RESNET, "name": "renamed"}, base["models"][1]]},
               {"attacks": [NOISE, {**NOISE, "name": "noise-4", "params": {"area": 0.05}}]},
               {"attacks": [NOISE, {**NOISE, "name": "noise-5", "params": {"area": 0.04}}]}]
    for change in changes:
        assert plan_id(parse_spec({**base, **change})) != ident, change




def test_a_lower_is_better_evaluation_ranks_its_own_way(tmp_path, monkeypatch):
    """A curve registered as lower-is-better ranks ascending with no edit in the leaderboard."""
    from robust.evaluations import PatchDrop

    monkeypatch.setattr(registry, "_EVALUATIONS", dict(registry.evaluations()))

    @registry.register_evaluation
    class DropLower(PatchDrop):
        name, higher_is_better, variants = "drop-lower", False, {}

    lower = {**DROP, "name": "lower", "evaluation": "drop-lower"}
    spec = parse_spec({**SMALL, "models": [{"spec": RESNET, "name": "resnet"},
                                           {"spec": "zoo:digits-m/mixer", "name": "mixer"}],
                       "attacks": [], "evaluations": [DROP, lower]})
    run_board(spec, tmp_path / "out")
    written = leaderboard.render(spec, tmp_path / "out")
    text = written["md"].read_text()

    def ranked(section):  # [(model, area)] as the table lists them
        rows = text.split(f"## {section}\n")[1].split("##")[0].splitlines()
        return [(cells[2].strip(), float(cells[3].split()[0])) for line in rows
                if line.startswith("| ") and line[2].isdigit()
                for cells in [line.split("|")]]

    drop, low = ranked("drop"), ranked("lower")
    assert len(drop) == 2 and drop[0][1] > drop[1][1]  # the two models differ
    assert low == drop[::-1]
    assert "(lower is better)" in text.split("## lower\n")[1] and "(higher is better)" in text.split("## drop\n")[1]
    assert "(lower is better)" in written["html"].read_text()
    doc = json.loads(written["json"].read_text())
    assert {e["evaluation"]: e["lower_is_better"] for e in doc["evaluations"]} == {"drop": False, "lower": True}


def test_notes_from_the_method_and_the_spec_go_under_their_table_escaped(tmp_path, monkeypatch):
    drop = registry.get("patch-drop", "evaluation")
    monkeypatch.setitem(registry._EVALUATIONS, "patch-drop", dataclasses.replace(drop, note="Read <this> *first*."))
    notes = {"noise": "A control: <b>no</b> attack | in it.", "drop": "Ten levels."}
    spec = parse_spec({**SMALL, "evaluations": [DROP], "notes": notes})
    run_board(spec, tmp_path / "out")
    written = leaderboard.render(spec, tmp_path / "out")
    md, html = written["md"].read_text(), written["html"].read_text()
    noise, drop_section = md.split("## noise\n")[1].split("## ")[0], md.split("## drop\n")[1].split("## ")[0]
    assert r"A control: \<b\>no\</b\> attack \| in it." in noise
    assert drop_section.index(r"Read \<this\> \*first\*.") < drop_section.index("Ten levels.")  # the method's first
    assert "<p>A control: &lt;b&gt;no&lt;/b&gt; attack | in it.</p>" in html and "<p>Ten levels.</p>" in html
    assert "Read &lt;this&gt; *first*." in html
    assert "<b>no</b>" not in html
    for bad, message in (({"nosie": "x"}, r"spec \[notes\]: key 'nosie' is unknown \(did you mean noise"),
                         ({"noise": " "}, r"spec \[notes\]: noise=' ' is not valid; expected a non-empty text"),
                         ("text", "spec: notes='text' is not valid")):
        with pytest.raises(ValueError, match=message):
            parse_spec({**SMALL, "evaluations": [DROP], "notes": bad})
    assert plan_id(parse_spec({**SMALL, "evaluations": [DROP]})) == plan_id(spec)  # a note changes no cell


def test_selectivity_carries_its_reading_and_no_measured_figure():
    note = registry.get("selectivity", "evaluation").note
    import re

    assert "patch-mixing curve" in note and not re.search(r"\d\.\d|%", note)  # the areas live in the report
    assert registry.get("selectivity-rise", "evaluation").note == note


def test_a_format_is_one_writer(tmp_path, monkeypatch):
    spec = parse_spec(SMALL)
    run_board(spec, tmp_path / "out")
    monkeypatch.setitem(leaderboard.WRITERS, "txt", ("board.txt", lambda board: "\n".join(
        f"{r.name} {r.attack} {r.headline}={r.score}" for r in board.attacks) + "\n"))
    written = leaderboard.render(spec, tmp_path / "out", formats=("txt", "json"))
    assert set(written) == {"figures", "txt", "json"}
    row = json.loads(written["json"].read_text())["rows"][0]
    assert row["targeted"] is True and "headline" not in row  # a targeted attack (a control's default) ranks by TCS
    assert written["txt"].read_text() == f"resnet noise tcs={row['tcs']}\n"
    with Store(tmp_path / "out" / "results.sqlite") as store:
        assert "board.txt" in store.outputs()
    with pytest.raises(ValueError, match=r"format 'pdf' is not valid; expected some of \('md', 'html', 'json', "
                                         r"'csv', 'txt'\)"):
        leaderboard.render(spec, tmp_path / "out", formats=("pdf",))


def test_a_run_loads_and_hashes_each_model_once(tmp_path, monkeypatch):
    import robust.models
    from robust.runner import cache

    loads, hashes = [], []
    real_load, real_hash = robust.models.load_model, cache.fingerprint_model
    monkeypatch.setattr(robust.models, "load_model", lambda spec, **kw: loads.append(spec) or real_load(spec, **kw))
    monkeypatch.setattr(cache, "fingerprint_model", lambda net: hashes.append(1) or real_hash(net))
    spec = parse_spec({**SMALL, "models": [RESNET, "zoo:digits-m/mixer"], "evaluations": [DROP], "seeds": [0, 1],
                       "device": "cpu"})
    assert run_board(spec, tmp_path / "out").ran == 8
    assert sorted(loads) == sorted([RESNET, "zoo:digits-m/mixer"]) and len(hashes) == 2
    loads.clear()
    run_board(spec, tmp_path / "out")  # a new run loads afresh (a file may have changed), and computes nothing
    assert len(loads) == 2


def test_rows_the_intervals_cannot_tell_apart_share_a_rank():
    from robust.leaderboard.rows import ranks

    @dataclasses.dataclass
    class Row:
        interval: list[float] | None
        lower_is_better: bool = True

    rows = [Row([0.10, 0.20]), Row([0.15, 0.30]), Row([0.25, 0.35]), Row([0.50, 0.60]), Row(None)]
    assert ranks(rows) == [1, 1, 2, 4, 5]  # the third is beyond the first only; the fourth beyond the first three
    assert ranks([Row([0.1, 0.3]), Row([0.1, 0.3])]) == [1, 1]
    # Where higher is better (an accuracy curve's area), beyond doubt means wholly above.
    areas = [Row([0.70, 0.80], False), Row([0.65, 0.75], False), Row([0.50, 0.60], False)]
    assert ranks(areas) == [1, 1, 3]


def test_cells_not_finished_are_marked_pending(tmp_path):
    spec = parse_spec({**SMALL, "evaluations": [DROP]})
    run_board(spec, tmp_path / "out")
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as conn:  # as if the run had stopped before it
        conn.execute("DELETE FROM cells WHERE task = 'drop'")
    written = leaderboard.render(spec, tmp_path / "out")
    assert "## Pending cells" in written["md"].read_text() and "resnet / drop" in written["md"].read_text()
    assert json.loads(written["json"].read_text())["pending"] == ["resnet / drop"]
    assert "Pending cells" in written["html"].read_text()


def test_the_held_out_detector_is_trained_on_the_other_attacks_and_bounds_are_their_own_threat_models(tmp_path):
    bound = 32 / 255
    attacks = [{"name": f"{a}-{tag}", "attack": a, "targeted": True,
                "params": {"area": 0.12, **({"steps": 3} if a == "lavan" else {}), **extra}}
               for a in ("lavan", "noise-patch", "natural-patch")
               for tag, extra in (("free", {}), ("eps32", {"bound": bound}))]
    spec = parse_spec({**SMALL, "samples": 24, "batch_size": 24, "attacks": attacks, "heldout_detector": True})
    run_board(spec, tmp_path / "out")
    with Store(tmp_path / "out" / "results.sqlite") as store:
        squares = store.squares(set(store.plan(plan_id(spec))))
    assert len(squares) == 6 and all(s["attacked"].dtype == torch.uint8 and s["clean"].shape == (24, 3, 22, 22)
                                     for s in squares.values())
    leaderboard.render(spec, tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    for row in doc["rows"]:
        held = row["realism"]["heldout_auc"]  # two other methods at the same bound, one square pair per image
        assert held["attacks"] == 2 and held["train"] == held["test"] == 12 and 0 <= held["auc"] <= 1
        assert held["auc"] != row["realism"]["detector_auc"]["auc"] or row["attack"].startswith("noise")
    # each bound is its own threat model: one worst case for the free patches and one for the bounded ones
    assert [w["name"] for w in doc["worst_case"]] == ["worst-case-12pct", "worst-case-12pct-bound32"]
    assert doc["worst_case"][1]["attacks"] == ["lavan-eps32", "noise-patch-eps32", "natural-patch-eps32"]
    text = (tmp_path / "out" / "README.md").read_text()
    assert "held-out AUC |" in text and "never on this attack's" in text
    assert "held-out AUC" in (tmp_path / "out" / "index.html").read_text()
    assert "heldout_auc" in (tmp_path / "out" / "results.csv").read_text().splitlines()[0]
    # a board that does not ask for the held-out detector keeps no crops (and its cells are keyed apart)
    plain = parse_spec({**SMALL, "samples": 24, "batch_size": 24, "attacks": attacks[:2]})
    assert plan_id(plain) != plan_id(dataclasses.replace(plain, heldout_detector=True))
    run_board(plain, tmp_path / "plain")
    with Store(tmp_path / "plain" / "results.sqlite") as store:
        assert store.squares(set(store.plan(plan_id(plain)))) == {} and len(store.done()) == 2


def test_a_board_that_trains_no_detector_keeps_its_figures_and_shows_the_measures_alone(tmp_path):
    attacks = [NOISE, {"name": "lavan", "attack": "lavan", "params": {"area": 0.12, "steps": 2}}]
    table = {**SMALL, "samples": 8, "batch_size": 8, "attacks": attacks}
    on, off = parse_spec(table), parse_spec({**table, "detector": False})
    assert plan_id(on) != plan_id(off)  # its cells are keyed apart: their realism summaries differ
    docs = {}
    for name, spec in (("on", on), ("off", off)):
        run_board(spec, tmp_path / name)
        leaderboard.render(spec, tmp_path / name)
        docs[name] = json.loads((tmp_path / name / "results.json").read_text())
    for a, b in zip(docs["on"]["rows"], docs["off"]["rows"], strict=True):
        assert a["realism"]["detector_auc"]["auc"] >= 0 and b["realism"]["detector_auc"] is None
        assert [a[k] for k in ("attack", "tcs", "asr", "n")] == [b[k] for k in ("attack", "tcs", "asr", "n")]
        assert all(a["realism"][m] == b["realism"][m] for m in ("ssim", "psnr", "tv", "hist"))
    text = (tmp_path / "off" / "README.md").read_text()
    assert "| hist |\n|---|---|---|---|---|---|---|\n" in text and "detector = false" in text
    assert "| hist | detector AUC |\n" + "|---" * 8 + "|\n" in (tmp_path / "on" / "README.md").read_text()
    assert "<th>detector AUC</th>" not in (tmp_path / "off" / "index.html").read_text()
    assert (tmp_path / "off" / "figures" / "realism.png").stat().st_size > 0


def test_a_board_with_several_step_counts_draws_the_frontier_with_measured_passes(tmp_path):
    attacks = [{"name": f"lavan-{k}", "attack": "lavan", "params": {"area": 0.12, "steps": k}} for k in (1, 4)]
    spec = parse_spec({**SMALL, "samples": 16, "batch_size": 16, "attacks": [*attacks, NOISE]})
    run_board(spec, tmp_path / "out")
    leaderboard.render(spec, tmp_path / "out")
    rows = {r["attack"]: r for r in json.loads((tmp_path / "out" / "results.json").read_text())["rows"]}
    assert rows["noise"]["passes"] == 2.0  # Grad-CAM's forward and backward, nothing else
    assert 2.0 < rows["lavan-1"]["passes"] <= 5.0 and rows["lavan-1"]["passes"] < rows["lavan-4"]["passes"] <= 11.0
    text = (tmp_path / "out" / "README.md").read_text()
    section = text.split("## The refinement frontier")[1].split("\n## ")[0]
    assert "| resnet | lavan | 1 | lavan-1 |" in section and "| resnet | lavan | 4 | lavan-4 |" in section
    assert "figures/frontier.png" in section and (tmp_path / "out" / "figures" / "frontier.png").is_file()
    assert "The refinement frontier" in (tmp_path / "out" / "index.html").read_text()
    assert "passes" in (tmp_path / "out" / "results.csv").read_text().splitlines()[0]


def _cell(model: str, task: str, **counts) -> dict:
    fields = {"n": 500, "clean_correct": 486, "adv_correct": 0, "success": 0, "target_hit": 0, "success_all": 0,
              "target_hit_all": 0, "skipped": 0, "skipped_correct": 0, "targeted": False, **counts}
    return {"model": model, "task": task, "kind": "attack", "status": "done", "seed": 0, "seconds": 1.0,
            "result": fields}


def test_every_shown_number_is_formatted_from_the_exact_counts_once():
    """356 / 486 = 73.251 %: shown 73.3, not 73.2 from a value rounded to 4 decimals first; 462/463 and 445/446
    stay apart (they tie at 4 decimals), so their order and Spearman's rho come from the exact rates."""
    from robust.leaderboard import build
    from robust.leaderboard import rows as board_rows

    zoo = ("resnet", "vit", "mixer", "resnet-pm")
    models = [{"spec": f"zoo:digits-m/{z}", "name": m} for z, m in zip(zoo, "abcd", strict=True)]
    spec = parse_spec({**SMALL, "models": models,
                       "attacks": [{"name": "lavan", "attack": "lavan", "params": {"area": 0.12}},
                                   {"name": "noise", "attack": "noise-patch", "params": {"area": 0.12}}]})
    cells = [_cell("a", "noise", success=356, targeted=False),
             _cell("b", "noise", clean_correct=463, success=462), _cell("c", "noise", clean_correct=446, success=445),
             _cell("d", "noise", success=10)]
    rows = {r.name: r for r in build.attack_rows(spec, cells)}
    assert rows["a"].asr == 356 / 486 and board_rows.pct(rows["a"].asr) == "73.3"
    assert rows["b"].asr == 462 / 463 and rows["c"].asr == 445 / 446 and rows["b"].asr > rows["c"].asr
    low, high = rows["a"].asr_interval
    assert board_rows.ci(rows["a"].asr_interval) == f"[{100 * low:.1f}, {100 * high:.1f}]"
    ranked = sorted(rows.values(), key=lambda r: r.rank_key())
    assert [r.name for r in ranked] == ["d", "a", "c", "b"]  # c (445/446) is more robust than b (462/463)


def test_rank_sentences_say_what_the_rule_does(tmp_path):
    """The rule: 1 + the rows wholly better. Overlapping rows can differ in rank (b and c below), and the board
    says so instead of claiming that overlapping rows share a rank."""
    from robust.leaderboard.rows import RANK_CAVEAT, ranks

    @dataclasses.dataclass
    class Row:
        interval: list
        lower_is_better: bool = True

    assert ranks([Row([0.0, 0.10]), Row([0.05, 0.15]), Row([0.12, 0.20])]) == [1, 1, 2]  # b, c overlap
    spec = parse_spec({**SMALL, "evaluations": [DROP]})
    run_board(spec, tmp_path / "out")
    written = leaderboard.render(spec, tmp_path / "out")
    for kind in ("md", "html"):
        text = " ".join(written[kind].read_text().split())
        assert RANK_CAVEAT in text and "cannot tell apart share a rank" not in text
        assert "intervals overlap share a rank" not in text

