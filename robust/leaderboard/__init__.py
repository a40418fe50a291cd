"""Render a board from the runner's store: ``README.md`` (GitHub Markdown), ``index.html`` (static, sortable,
figures embedded), ``results.json`` (RobustBench-style rows), ``results.csv`` and ``figures/``.

Rendering reads only the store: the cells shown are those the last run of the spec recorded (its plan, under
``plan_id(spec)``), so a store can hold earlier configurations without leaking them into the board, and nothing
is loaded or computed. Each format is one entry of ``WRITERS``: a file name and a function of the ``Board``.
Every user-supplied string is escaped (Jinja2 autoescape for HTML, backslashes for Markdown, formula quoting for
CSV).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from robust import registry
from robust.checks import InputError
from robust.io import atomic_write_text
from robust.leaderboard import build, cards, public
from robust.leaderboard import figures as figs
from robust.leaderboard.defences import defence_rows
from robust.leaderboard.export import csv_text, json_text
from robust.leaderboard.markdown import markdown
from robust.leaderboard.rows import Board
from robust.runner import BOARD_FORMAT, MARKER, STORE_NAME, Spec, Store, check_board_dir, load_spec, plan_id


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def html(board: Board) -> str:
    """The board as one static page: sortable tables, figures embedded, every string autoescaped.

    Models are ranked by the board's first worst case (most robust first; models without it last), whose columns
    come first; each attack column shows its headline (TCS or ASR), each evaluation its area. Figures and the gallery
    are embedded as PNG data URIs, so the page needs no other file.

    Args:
        board: everything a writer needs (``render`` builds it from the store; its ``reproduction`` is
            ``robust.leaderboard.cards.reproduction``'s dict).

    Returns:
        The HTML document (``index.html``).

    Examples:
        >>> import re
        >>> from robust.leaderboard import html
        >>> from robust.leaderboard.cards import reproduction
        >>> from robust.leaderboard.rows import Board
        >>> from robust.runner import parse_spec
        >>> spec = parse_spec({"title": "my <board>", "dataset": "digits-m", "models": ["zoo:digits-m/resnet"],
        ...                    "evaluations": ["patch-drop"]})
        >>> page = html(Board(spec, samples=8, versions={}, attacks=[], evaluations=[], failed=[],
        ...                   reproduction=reproduction(spec, [], {})))
        >>> page.splitlines()[0], re.findall("<title>.*</title>", page)
        ('<!doctype html>', ['<title>my &lt;board&gt;</title>'])
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("robust.leaderboard", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    spec = board.spec
    models = {m.name: {"name": m.name, "architecture": None, "clean_acc": None, "scores": {}} for m in spec.models}
    columns = []
    for w in board.worst:  # first: the board is ranked by the worst case
        for r in w.rows:
            models[r.name]["scores"][w.name] = r.score
        columns.append({"name": w.name, "measure": "TCS", "description": w.description})
    for task, rows in board.tables():
        for r in rows:
            models[r.name]["scores"][task.name] = r.score
            if task.kind == "attack":
                models[r.name].update(architecture=r.architecture, clean_acc=r.clean_acc)
        measure = rows[0].headline.upper() if task.kind == "attack" else rows[0].headline
        columns.append({"name": task.name, "measure": measure, "description": task.description})
    order = list(models.values())
    if board.worst:  # most robust first under the worst case that ranks the board; models without it last
        first = board.worst[0].name
        order.sort(key=lambda m: (m["scores"].get(first) is None, m["scores"].get(first) or 0.0))
    return env.get_template("board.html.j2").render(
        **build.shared_context(board), title=spec.title, dataset=spec.dataset, samples=board.samples,
        seeds=", ".join(map(str, spec.seeds)),
        versions={"robust": board.versions.get("robust", "?"), "torch": board.versions.get("torch", "?")},
        columns=columns, models=order, figures={name: _data_uri(path) for name, path in board.figures.items()},
        gallery=[{"caption": cap, "src": _data_uri(p)} for cap, p in board.gallery])


#: every format: its file in the board folder and its writer (a new format is one more entry)
WRITERS: dict[str, tuple[str, Callable[[Board], str]]] = {
    "md": ("README.md", markdown), "html": ("index.html", html), "json": ("results.json", json_text),
    "csv": ("results.csv", csv_text)}
FORMATS = tuple(WRITERS)
BOARD_FILES = {name for name, _ in WRITERS.values()}  # the files a render writes besides its figures


def _figures(spec: Spec, rows: list[dict], attacks: list, evaluations: list, worst: list, stage: Path
             ) -> tuple[dict[str, Path], list[tuple[str, Path]]]:
    """Draw the board's figures into the folder ``stage``: (figure name -> path, gallery of (caption, path))."""
    paths: dict[str, Path] = {}

    def draw(name: str, figure: Callable[..., Path | None], *args: object) -> None:
        """Draw ``figure(*args, stage / NAME.png)``, kept unless the figure has nothing to show."""
        if (p := figure(*args, stage / f"{name}.png")) is not None:
            paths[name] = p

    draw("heatmap", figs.heatmap, attacks, [m.name for m in spec.models], [t.name for t in spec.tasks])
    untargeted = [r for r in attacks if r.headline == "asr" and r.attack not in spec.only]
    draw("clean-vs-robust", figs.clean_vs_robust, [*(r for w in worst[:1] for r in w.rows), *untargeted])
    draw("budget", figs.budget, build.budget_series(spec, attacks))
    draw("frontier", figs.frontier, build.frontier_series(spec, attacks))
    if worst:
        matrices = build.class_tcs(spec, rows, worst[0])
        k = next((len(h) for h, _ in matrices.values()), 0)
        draw("class-tcs", figs.class_matrices, matrices, [str(i) for i in range(k)],
             f"TCS by target (rows) and true class (columns) under {worst[0].name}, per model: clean-correct "
             "images whose target is another class, seeds pooled")
    draw("realism", figs.realism, build.realism_rows(spec, attacks), {t.name: build.step_family(t) for t in spec.tasks})
    classes = next((r["result"]["per_image"]["classes"] for r in rows if r["status"] == "done"
                    and "per_image" in (r["result"] or {})), None)
    for t in spec.tasks:
        group = [r for r in evaluations if r.evaluation == t.name]
        if group:
            chance = registry.get(t.method, "evaluation").chance
            if chance == "uniform":  # an accuracy's guessing level, from the class count the cells recorded
                chance = 1 / classes if classes else None
            paths[t.name] = figs.curves(group, stage / f"{figs.slug(t.name)}.png", t.name, chance)
    gallery = []
    for r in rows:
        if r["kind"] == "attack" and r["status"] == "done" and r["figure"] and r["seed"] == spec.seeds[0]:
            path = figs.write_png(r["figure"], stage / f"gallery-{figs.slug(r['model'], r['task'])}.png")
            labels = "; ".join(("" if "success" not in e else "success: " if e["success"] else "failure: ")
                               + f"{e['clean']} → {e['attacked']}" + (f" (target {e['target']})" if e["target"] else "")
                               for e in r["result"].get("examples", []))
            gallery.append((f"{r['model']} / {r['task']}: {labels}", path))
    return paths, gallery


def render(spec: Spec | str | os.PathLike, out: str | os.PathLike | None = None,
           formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write the board of ``spec`` from its store: Markdown, HTML, JSON and CSV, and the figures.

    Only the store is read: the cells are those the last run of this spec recorded, and no model or data is loaded.
    Only files that an earlier render of this board wrote are ever replaced or deleted; a folder that is not a board
    is refused.

    Args:
        spec: the spec: a TOML file's path, or a parsed ``Spec``.
        out: the board folder (default: beside the spec, named after it).
        formats: which of ``md``, ``html``, ``json`` and ``csv`` to write.

    Returns:
        The paths written, by format (``figures`` too).

    Raises:
        InputError: a spec changed since its last run (run it first), or a folder that is not a board.

    Examples:
        >>> from pathlib import Path
        >>> from robust import render, run_board
        >>> _ = Path("quick.toml").write_text('''
        ... title = "a quick patch"
        ... dataset = "digits-m"
        ... samples = 8
        ... models = ["zoo:digits-m/resnet"]
        ... attacks = [{ preset = "lavan-12pct", name = "lavan-5", params = { steps = 5 } }]
        ... ''')
        >>> _ = run_board("quick.toml", workers=1)
        >>> paths = render("quick.toml", formats=("md", "csv"))
        >>> sorted(paths), paths["md"].read_text().splitlines()[0]
        (['csv', 'figures', 'md'], '# a quick patch')
    """
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    if bad := sorted(set(formats) - set(WRITERS)):
        raise InputError(f"format {bad[0]!r} is not valid; expected some of {tuple(WRITERS)}.")
    out = check_board_dir(Path(out) if out is not None else spec.default_out)
    if not (out / STORE_NAME).is_file():
        raise InputError(f"there are no results in {str(out)!r}; run `robust leaderboard run` for this spec first.")
    with Store(out / STORE_NAME) as store:
        keys = store.plan(plan_id(spec))
        if keys is None:
            raise InputError(f"the store in {str(out)!r} has no run of this spec (it was not run into this folder, or "
                             f"the spec changed since); expected `robust leaderboard run {spec.path or 'SPEC'}` into "
                             "it first (finished cells are skipped).")
        rows = store.rows(set(keys))
        previous = store.outputs() | marker_outputs(out)
        squares = store.squares(set(keys)) if spec.heldout_detector else {}
    for r in rows:  # the names the spec gives now (a renamed model keeps its results)
        r["model"], r["task"] = keys[r["key"]]
    recorded = {r["key"] for r in rows}
    pending = sorted({keys[k] for k in keys if k not in recorded})  # an interrupted or running run's cells
    hidden = public.redactor(spec)  # a published board never shows the user's absolute paths
    real, spec = spec, public.public_spec(spec, hidden)  # the store is read with the real one, above
    for r in rows:
        if r.get("error"):
            r["error"] = public.redact(r["error"], hidden)
    attacks, evaluations = build.attack_rows(spec, rows), build.evaluation_rows(spec, rows)
    if spec.heldout_detector:
        attacks = build.with_heldout(spec, rows, attacks, squares)

    worst = build.worst_cases(spec, rows, attacks)
    fig_dir = out / "figures"
    stage = Path(tempfile.mkdtemp(prefix=".robust-render-", dir=out))  # figures are drawn here, then moved
    try:
        paths, gallery = _figures(spec, rows, attacks, evaluations, worst, stage)
        drawn = [*paths.values(), *(p for _, p in gallery)]
        targets = {f"figures/{p.name}" for p in drawn} | {WRITERS[fmt][0] for fmt in formats}  # what this render writes
        if clash := sorted(rel for rel in targets if (out / rel).exists() and rel not in previous):
            raise InputError(f"{str(out)!r} holds {', '.join(map(repr, clash))}, which no render of this board "
                             "wrote; refusing to replace a file robust did not write (move it, or render into "
                             "another folder with --out).")
        with Store(out / STORE_NAME) as store:  # ours from now on, even if this render stops half-way
            store.set_outputs(previous | targets)
        fig_dir.mkdir(parents=True, exist_ok=True)
        for p in drawn:
            os.replace(p, fig_dir / p.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    paths = {k: fig_dir / p.name for k, p in paths.items()}
    gallery = [(label, fig_dir / p.name) for label, p in gallery]
    versions = next((r["versions"] for r in rows if r["versions"]), {})
    board = Board(spec, samples=next((r["config"]["samples"] for r in rows if "samples" in r["config"]), spec.samples),
                  versions=versions, attacks=attacks, evaluations=evaluations, failed=build.failed_rows(rows),
                  worst=worst, figures=paths, gallery=gallery, pending=[f"{m} / {t}" for m, t in pending],
                  cards=cards.model_cards(spec, attacks),
                  reproduction=cards.reproduction(real, rows, versions, out, hidden),
                  defences=defence_rows(spec, rows, evaluations))

    result: dict[str, Path] = {"figures": fig_dir}
    for fmt, (name, write) in WRITERS.items():
        if fmt in formats:
            result[fmt] = out / name
            atomic_write_text(result[fmt], public.redact(write(board), hidden))
    for rel in previous - targets:  # figures of models or tasks no longer in the spec, and nothing else
        if figs.FIGURE_RE.match(rel):
            (out / rel).unlink(missing_ok=True)
    ours = targets | (previous & BOARD_FILES)  # files of formats not rendered now stay ours too
    with Store(out / STORE_NAME) as store:
        store.set_outputs(ours)
    atomic_write_text(out / MARKER, json.dumps({"format": BOARD_FORMAT, "outputs": sorted(ours)}) + "\n")
    return result


def marker_outputs(out: Path) -> set[str]:
    """The files the board folder's marker says robust's renders wrote: the marker travels with a committed board,
    where the store (not committed) does not, so a fresh clone's run may replace the board it re-renders. Only
    board file names count (a README, results, a figure); anything else in the marker, or a marker that is not
    robust's JSON, names nothing."""
    try:
        doc = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return set()
    names = doc.get("outputs") if isinstance(doc, dict) and doc.get("format") == BOARD_FORMAT else None
    return {n for n in names if isinstance(n, str) and (n in BOARD_FILES or figs.FIGURE_RE.match(n))} \
        if isinstance(names, list) else set()


__all__ = ["FORMATS", "WRITERS", "html", "render"]
