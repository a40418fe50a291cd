"""Rendering a board: Markdown, HTML, JSON and CSV from the store, escaped; and the HTML page in Chromium."""

from __future__ import annotations

import csv
import json
import re

import pytest

from robust.leaderboard import render
from robust.runner import parse_spec, run_board

NASTY = "<script>alert(1)</script>|x"
SPEC = {"title": "board <b>test</b>", "dataset": "digits-m", "samples": 40, "batch_size": 20, "seeds": [0],
        "models": [{"spec": "zoo:digits-m/resnet", "name": NASTY}, {"spec": "zoo:digits-m/mixer", "name": "mixer"},
                   {"spec": "zoo:digits-m/vit", "name": "vit"}],
        "attacks": ["noise-patch-8pct", "natural-patch-8pct",
                    {"preset": "pgd-linf-8", "name": "pgd-1", "params": {"steps": 1}},
                    # a variant on one model only: on the board, in the realism figure's line, not in the worst case
                    {"preset": "noise-patch-8pct", "name": "noise-random", "params": {"placement": "random"},
                     "models": ["mixer"]}],
        "evaluations": [{"preset": "patch-mixing-attack", "params": {"seeds": 1, "ratios": [0.0, 0.3]}}]}


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    spec = parse_spec(SPEC)
    run_board(spec, out)
    return spec, out, render(spec, out)


def test_every_format_is_written(board):
    _, out, written = board
    assert {p.name for p in (written["md"], written["html"], written["json"], written["csv"])} == \
        {"README.md", "index.html", "results.json", "results.csv"}
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert {"heatmap.png", "realism.png", "clean-vs-robust.png", "class-tcs.png"} <= set(figures)
    assert sum(f.startswith("gallery-") for f in figures) == 10
    assert sum(f.startswith("patch-mixing-attack") for f in figures) == 1


def test_json_rows_extend_robustbench_model_cards(board):
    _, out, _ = board
    doc = json.loads((out / "results.json").read_text())
    assert doc["dataset"] == "digits-m" and doc["samples"] == 40 and doc["seeds"] == [0]
    rows = doc["rows"]
    assert len(rows) == 10 and [r["name"] for r in rows if r["attack"] == "noise-random"] == ["mixer"]
    for r in rows:
        assert {"name", "architecture", "dataset", "clean_acc", "attack", "area", "asr", "tcs", "asr_interval",
                "tcs_interval", "n"} <= set(r)
        assert r["n"] == 40 and 0 <= r["asr"] <= 1
        assert (r["tcs"] is None) == (r["attack"] == "pgd-1")
        realism = r["realism"]
        assert (realism is None) == (r["attack"] == "pgd-1")  # a patch attack's patches are measured
        if realism:
            assert realism["ssim"]["n"] == 40 and realism["detector_auc"]["test"] == 20
            assert 0 <= realism["detector_auc"]["auc"] <= 1 and 0 <= realism["hist"]["mean"] <= 1
        if r["tcs"] is not None:
            assert r["tcs_interval"][0] <= r["tcs"] <= r["tcs_interval"][1] and r["area"] == 0.08
    assert len(doc["evaluations"]) == 3 and all(e["x"] == [0.0, 19 / 64] for e in doc["evaluations"])  # real fraction
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 10 + 3 and table[0]["name"] == NASTY  # and the worst case's rows
    assert all((r["detector_auc"] == "") == (r["attack"] in ("pgd-1", "worst-case-8pct")) for r in table)
    assert {r["attack"] for r in table[10:]} == {"worst-case-8pct"}


def test_every_attack_of_a_model_drew_the_same_targets_and_the_worst_case_is_their_union(board):
    from robust.runner import STORE_NAME, Store

    _, out, _ = board
    with Store(out / STORE_NAME) as store:
        cells = [c for c in store.rows() if c["kind"] == "attack" and c["status"] == "done"]
    targets = {}
    for c in cells:
        per = c["result"]["per_image"]
        assert len(per["y"]) == len(per["adv"]) == 40 and per["classes"] == 10
        if per["target"] is not None:
            targets.setdefault((c["model"], c["seed"]), []).append(per["target"])
    assert len(targets) == 3 and all(len(t) >= 2 and all(v == t[0] for v in t) for t in targets.values())
    for c in cells:  # the gallery: successes first, then failures, each labelled
        flags = [e["success"] for e in c["result"]["examples"]]
        assert len(flags) == 4 and flags == sorted(flags, reverse=True)
    doc = json.loads((out / "results.json").read_text())
    (worst,) = doc["worst_case"]
    assert worst["attacks"] == ["noise-patch-8pct", "natural-patch-8pct"] and set(worst["agreement"]) == set(
        worst["attacks"])
    for w in worst["rows"]:
        mine = [r for r in doc["rows"] if r["name"] == w["name"] and r["attack"] in worst["attacks"]]
        assert w["tcs"] >= max(r["tcs"] for r in mine) and w["asr"] >= max(r["asr"] for r in mine)
        assert w["tcs"] <= sum(r["tcs"] for r in mine) + 1e-9 and w["clean_correct"] == mine[0]["clean_correct"]


def test_model_cards_and_how_to_reproduce(board):
    _, out, _ = board
    doc = json.loads((out / "results.json").read_text())
    cards = {c["name"]: c for c in doc["models"]}
    assert cards["mixer"]["params"] > 0 and cards["mixer"]["training"].startswith("robust zoo train mixer")
    assert cards["mixer"]["reported"]["n"] == 1000 and cards["mixer"]["clean_acc"] is not None
    repro = doc["reproduction"]
    assert repro["spec"] is None and repro["command"] is None  # a spec built in code has no file to rerun
    assert repro["devices"] == ["cpu"] and repro["date"].endswith("UTC") and repro["versions"]["torch"]
    text = (out / "README.md").read_text()
    assert "## Reproduce" in text and "[results.json](results.json)" in text
    assert "| \\<script\\>alert(1)\\</script\\>\\|x | zoo:digits-m/resnet |" in text  # the card's name, escaped
    page = (out / "index.html").read_text()
    assert 'href="results.csv"' in page and 'id="reproduce"' in page and "<script>alert(1)" not in page


def test_a_spec_file_is_quoted_in_a_fence_it_cannot_close():
    from robust.leaderboard.cards import fence

    assert fence("title = 'x'") == "```" and fence("a ```` b ` c") == "`````"


def test_markdown_ranks_best_first_and_escapes(board):
    _, out, _ = board
    text = (out / "README.md").read_text()
    assert "## noise-patch-8pct" in text and "## pgd-1" in text and "## patch-mixing-attack" in text
    assert "\\<script\\>alert(1)\\</script\\>\\|x" in text  # a tag would run, a pipe would split the row
    assert text.index("## worst-case-8pct (ranks the board)") < text.index("## noise-patch-8pct")
    assert "Rank agreement with the worst case" in text
    realism = text.split("## Realism of the patches")[1].split("\n## ")[0]
    assert sum(line.startswith("| noise-patch-8pct |") for line in realism.splitlines()) == 3
    assert "pgd-1" not in realism and "figures/realism.png" in realism
    section = text.split("## noise-patch-8pct")[1].split("##")[0]
    tcs = [float(re.split(r"(?<!\\)\|", line)[6].split()[0]) for line in section.splitlines()
           if line.startswith("| ") and line[2].isdigit()]
    assert len(tcs) == 3 and tcs == sorted(tcs)


def test_html_escapes_user_strings(board):
    _, out, _ = board
    page = (out / "index.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;|x" in page
    assert "board &lt;b&gt;test&lt;/b&gt;" in page and page.count("data:image/png;base64,") >= 9
    assert "<h2>Realism of the patches</h2>" in page


def test_render_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="there are no results in"):
        render(parse_spec(SPEC), tmp_path)
    with pytest.raises(ValueError, match="format 'pdf' is not valid"):
        render(parse_spec(SPEC), tmp_path, formats=("pdf",))


def test_the_page_in_chromium(board):
    """Headless Chromium over the DevTools protocol: no console errors, a row per model, and a click on a column
    header reorders the rows."""
    from browser import Chromium, find_chromium

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (make test installs it with apt-get where it can)")
    spec, out, _ = board
    with Chromium() as browser:
        browser.open((out / "index.html").resolve().as_uri())
        names = browser.eval("Array.from(document.querySelectorAll('#board tbody tr td:first-child'))"
                             ".map(td => td.textContent)")
        assert sorted(names) == sorted(m.name for m in spec.models)
        col = browser.eval("Array.from(document.querySelectorAll('#board thead th')).findIndex("
                           "th => th.textContent.startsWith('noise-patch-8pct'))")
        values = ("Array.from(document.querySelectorAll('#board tbody tr')).map(tr => "
                  f"parseFloat(tr.cells[{col}].dataset.v))")
        browser.eval(f"document.querySelectorAll('#board thead th')[{col}].click()")
        ascending = browser.eval(values)
        assert ascending == sorted(ascending)
        browser.eval(f"document.querySelectorAll('#board thead th')[{col}].click()")
        descending = browser.eval(values)
        assert descending == sorted(descending, reverse=True) and descending != ascending
        assert browser.eval("document.querySelectorAll('img').length") >= 8
        assert browser.eval("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert browser.errors == [], browser.errors


def test_the_page_fits_the_window_at_two_widths(board, tmp_path):
    """At 1,400 and 800 px nothing but a table's own scroll box is wider than the window (the page never scrolls
    sideways), no table spills out of its box, and the screenshots are taken (kept in the test's folder)."""
    from browser import Chromium, find_chromium

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (make test installs it with apt-get where it can)")
    _, out, _ = board
    with Chromium() as browser:
        for width in (1400, 800):
            browser.resize(width)
            browser.open((out / "index.html").resolve().as_uri())
            page = browser.eval("[document.documentElement.scrollWidth, window.innerWidth]")
            assert page[0] <= page[1], f"the page is {page[0]} px wide in a {page[1]} px window"
            wide = browser.eval("Array.from(document.querySelectorAll('table')).filter(t => "
                                "t.getBoundingClientRect().right > window.innerWidth && !t.closest('.scroll'))"
                                ".map(t => t.id || t.className || t.rows[0].textContent.slice(0, 40))")
            assert wide == [], f"tables wider than the window outside a scroll box at {width} px: {wide}"
            browser.screenshot(str(tmp_path / f"board-{width}.png"))
            assert (tmp_path / f"board-{width}.png").stat().st_size > 10_000
        assert browser.errors == [], browser.errors


def test_worst_case_counts_an_image_hit_if_any_attack_hit_it():
    from robust.leaderboard.build import _worst_counts

    def cell(adv, target=(1, 2, 3, 4, 5)):
        return {"seed": 0, "result": {"per_image": {"classes": 10, "y": [0, 0, 0, 0, 0], "clean": [0, 0, 0, 0, 7],
                                                    "adv": list(adv), "target": list(target)}}}
    # image 0 hit by the first attack, 1 by the second, 2 only misclassified, 3 robust; 4 was misclassified already
    c = _worst_counts([cell([1, 0, 9, 0, 7]), cell([0, 2, 0, 0, 7])], "here")
    assert (c.n, c.clean_correct, c.target_hit, c.success, c.adv_correct) == (5, 4, 2, 3, 1)
    with pytest.raises(ValueError, match="here: the attacks drew different targets"):
        _worst_counts([cell([0] * 5), cell([0] * 5, target=(1, 2, 3, 4, 6))], "here")


def test_class_matrix_counts_the_worst_case_by_target_and_true_class(board):
    from robust.leaderboard.build import class_tcs
    from robust.runner import STORE_NAME, Store

    spec, out, _ = board
    with Store(out / STORE_NAME) as store:
        cells = store.rows()
    doc = json.loads((out / "results.json").read_text())
    (worst,) = doc["worst_case"]
    from robust.leaderboard.rows import WorstCase

    matrices = class_tcs(spec, cells, WorstCase(worst["area"], worst["attacks"], [], {}))
    assert set(matrices) == {NASTY, "mixer", "vit"}
    for w in worst["rows"]:  # the matrix's totals are the worst case's own counts
        hits, n = matrices[w["name"]]
        assert hits.shape == (10, 10) and int(n.diagonal().sum()) == 0 and bool((hits <= n).all())
        assert abs(int(hits.sum()) / int(n.sum()) - w["tcs"]) < 1e-3


def test_selectivity_states_where_chance_lies():
    from types import SimpleNamespace

    from robust.leaderboard.build import chance_note
    from robust.presets import load_preset

    rows = [SimpleNamespace(name="a", x=[0.1, 0.5], area_interval=[0.28, 0.29]),
            SimpleNamespace(name="b", x=[0.1, 0.5], area_interval=[0.295, 0.31])]
    note = chance_note(load_preset("selectivity"), rows)
    assert "area 30.0: 1 of 2 models' intervals lie wholly below it (a); 1 of 2 models' intervals contain it (b)" \
        in note
    x = [0.102, 0.199, 0.301, 0.398, 0.5]  # the 224-px grid's fractions: chance is their mean height, 30.1
    rows = [SimpleNamespace(name=n, x=x, area_interval=iv) for n, iv in
            (("a", [0.20, 0.25]), ("b", [0.28, 0.31]), ("c", [0.35, 0.40]), ("d", [0.21, 0.29]))]
    assert "area 30.1: 2 of 4 models' intervals lie wholly below it (a, d); 1 of 4 models' intervals contain it (b); " \
           "1 of 4 models' intervals lie wholly above it (c)" in chance_note(load_preset("selectivity"), rows)
    assert chance_note(load_preset("patch-drop"), rows) is None  # no chance line stated for it


def test_attacks_at_several_areas_make_a_budget_curve():
    from types import SimpleNamespace

    from robust.leaderboard.build import budget_series

    spec = parse_spec({"dataset": "digits-m", "models": ["zoo:digits-m/resnet"],
                       "attacks": ["noise-patch-8pct", "noise-patch-12pct", "natural-patch-8pct",
                                   {"preset": "noise-patch-12pct", "name": "noise-elsewhere",
                                    "params": {"placement": "random"}}]})
    rows = [SimpleNamespace(name="resnet", attack=a, score=v) for a, v in
            (("noise-patch-8pct", 0.05), ("noise-patch-12pct", 0.07), ("natural-patch-8pct", 0.02),
             ("noise-elsewhere", 0.04))] + [SimpleNamespace(name="vit", attack="noise-patch-12pct", score=0.03)]
    series = budget_series(spec, rows)  # one family with two areas; the others have one area each
    assert list(series) == ["noise-patch (placement=gradcam)"]  # named by what sets it apart from noise-elsewhere
    (family,) = series.values()
    assert family == {"resnet": [(0.08, 0.05), (0.12, 0.07)]}  # vit, run at one area of it, draws no curve


def test_attacks_at_several_step_counts_make_a_refinement_frontier(tmp_path):
    from types import SimpleNamespace

    from robust.leaderboard import figures
    from robust.leaderboard.build import budget_series, frontier_series

    spec = parse_spec({"dataset": "digits-m", "models": ["zoo:digits-m/resnet"],
                       "attacks": ["gan-patch-12pct", "gan-patch-refine10-12pct", "gan-patch-refine5-12pct",
                                   "lavan-12pct", {"preset": "lavan-12pct", "name": "lavan20", "params": {"steps": 20}},
                                   {"preset": "lavan-12pct", "name": "lavan20-8pct",
                                    "params": {"steps": 20, "area": 0.08}},
                                   {"preset": "gan-patch-12pct", "name": "critic", "params": {"lambda_gan": 2.0}},
                                   "noise-patch-12pct", "pgd-linf-8"]})

    def row(model, attack, score, passes):
        return SimpleNamespace(name=model, attack=attack, score=score, passes=passes, headline="tcs")

    rows = [row("resnet", "gan-patch-12pct", 0.7, 2.0), row("resnet", "gan-patch-refine10-12pct", 0.9, 7.1),
            row("resnet", "gan-patch-refine5-12pct", 0.85, 5.0), row("resnet", "lavan-12pct", 0.94, 40.0),
            row("resnet", "lavan20", 0.87, 17.0), row("resnet", "lavan20-8pct", 0.6, 30.0),
            row("resnet", "critic", 0.66, 2.0), row("resnet", "noise-patch-12pct", 0.07, 2.0),
            row("vit", "gan-patch-12pct", 0.68, 2.0), row("vit", "lavan-12pct", 1.0, 12.0)]
    series = frontier_series(spec, rows)
    # gan-patch at refine 0 (its default), 5 and 10; LaVAN at 20 and 100 steps; the critic variant, LaVAN at 8 %,
    # the noise control (no steps) and PGD (one step count) make no line; vit, with one point per family, no panel
    assert list(series) == ["resnet"]
    vit = frontier_series(spec, [*rows, row("vit", "gan-patch-refine10-12pct", 0.99, 5.0)])["vit"]
    assert [k for k, _ in vit["lavan (area=0.12)"]] == [100]  # a point beside vit's gan-patch line
    families = series["resnet"]
    assert sorted(families) == ["gan-patch (lambda_gan=0.05)", "lavan (area=0.12)"]
    assert [(k, r.attack) for k, r in families["gan-patch (lambda_gan=0.05)"]] == [
        (0, "gan-patch-12pct"), (5, "gan-patch-refine5-12pct"), (10, "gan-patch-refine10-12pct")]
    assert [k for k, _ in families["lavan (area=0.12)"]] == [20, 100]
    assert "lavan (steps=20)" in budget_series(spec, rows)  # the area curve is its own view
    assert figures.frontier(series, tmp_path / "frontier.png").stat().st_size > 1000
    assert figures.frontier({"resnet": {"x": [(0, row("resnet", "a", 0.1, None))]}}, tmp_path / "none.png") is None
