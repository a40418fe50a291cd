"""Render a board from the runner's store: ``README.md`` (GitHub Markdown), ``index.html`` (static, sortable,
figures embedded), ``results.json`` (RobustBench-style rows), ``results.csv`` and ``figures/``.

Only the cells the spec expands to are shown, so a store can hold earlier configurations without leaking them
into the board. Every user-supplied string is escaped (Jinja2 autoescape for HTML, pipes for Markdown).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from robust.io import atomic_write_text
from robust.leaderboard import figures as figs
from robust.leaderboard.tables import attack_rows, ci, csv_text, evaluation_rows, failed_rows, markdown, pct, rank_key
from robust.runner import STORE_NAME, Spec, Store, cell_names, check_board_dir, load_spec, plan

FORMATS = ("md", "html", "json", "csv")
BOARD_FILES = ("README.md", "index.html", "results.json", "results.csv")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _html(spec: Spec, attacks: list[dict], evaluations: list[dict], failed: list[dict], paths: dict[str, Path],
          gallery: list[tuple[str, Path]], versions: dict, samples: int) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("robust.leaderboard", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    models: dict[str, dict] = {}
    for m in spec.models:
        models[m.name] = {"name": m.name, "architecture": None, "clean_acc": None, "scores": {}}
    columns = []
    for t in spec.tasks:
        rows = [r for r in attacks if r["attack"] == t.name] if t.kind == "attack" else \
            [r for r in evaluations if r["evaluation"] == t.name]
        if not rows:
            continue
        if t.kind == "attack":
            measure = "TCS" if rows[0]["targeted"] else "ASR"
            for r in rows:
                models[r["name"]].update(architecture=r["architecture"], clean_acc=r["clean_acc"])
                models[r["name"]]["scores"][t.name] = r["tcs"] if r["targeted"] else r["asr"]
        else:
            measure = "area"
            for r in rows:
                models[r["name"]]["scores"][t.name] = r["area"]
        columns.append({"name": t.name, "measure": measure, "description": t.description})
    tables = [{"name": t.name, "description": t.description,
               "rows": sorted((r for r in attacks if r["attack"] == t.name), key=rank_key)}
              for t in spec.tasks if t.kind == "attack" and any(r["attack"] == t.name for r in attacks)]
    evals = [{"name": t.name, "description": t.description, "figure": _data_uri(paths[t.name]),
              "lower_is_better": next(r for r in evaluations if r["evaluation"] == t.name)["lower_is_better"]}
             for t in spec.tasks if t.name in paths and t.kind == "evaluation"]
    return env.get_template("board.html.j2").render(
        title=spec.title, dataset=spec.dataset, samples=samples, seeds=", ".join(map(str, spec.seeds)),
        versions={"robust": versions.get("robust", "?"), "torch": versions.get("torch", "?")},
        columns=columns, models=list(models.values()), attack_tables=tables, evaluations=evals,
        heatmap=_data_uri(paths["heatmap"]) if "heatmap" in paths else None,
        gallery=[{"caption": cap, "src": _data_uri(p)} for cap, p in gallery], failed=failed, pct=pct, ci=ci)


def render(spec: Spec | str | os.PathLike, out: str | os.PathLike | None = None,
           formats: tuple[str, ...] = FORMATS, keys: dict[str, tuple[str, str]] | None = None) -> dict[str, Path]:
    """Write the board of ``spec`` from the store in the board folder ``out`` (default: beside the spec); returns
    the paths. ``keys``: the spec's cells as {key: (model name, task name)} when the caller has them
    (``RunReport.keys``), saving a second planning pass. Only files that an earlier render of this board wrote
    (recorded in the store) are ever replaced or deleted; a folder that is not a board is refused."""
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    if bad := sorted(set(formats) - set(FORMATS)):
        raise ValueError(f"format {bad[0]!r} is not valid; expected some of {FORMATS}.")
    out = check_board_dir(Path(out) if out is not None else spec.default_out)
    if not (out / STORE_NAME).is_file():
        raise ValueError(f"there are no results in {str(out)!r}; run `robust leaderboard run` for this spec first.")
    if keys is None:
        keys = cell_names(*plan(spec))
    with Store(out / STORE_NAME) as store:
        rows = store.rows(set(keys))
        previous = store.outputs()
    for r in rows:  # the names the spec gives now (a renamed model keeps its results)
        r["model"], r["task"] = keys[r["key"]]
    attacks, evaluations, failed = attack_rows(spec, rows), evaluation_rows(spec, rows), failed_rows(rows)
    versions = next((r["versions"] for r in rows if r["versions"]), {})
    samples = next((r["config"]["samples"] for r in rows if "samples" in r["config"]), spec.samples)

    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    names, tasks = [m.name for m in spec.models], [t.name for t in spec.tasks]
    if (p := figs.heatmap(attacks, names, tasks, fig_dir / "heatmap.png")) is not None:
        paths["heatmap"] = p
    for t in spec.tasks:
        group = [r for r in evaluations if r["evaluation"] == t.name]
        if group:
            paths[t.name] = figs.curves(group, fig_dir / f"{figs.slug(t.name)}.png", t.name)
    gallery = []
    for r in rows:
        if r["kind"] == "attack" and r["status"] == "done" and r["figure"] and r["seed"] == spec.seeds[0]:
            path = figs.write_png(r["figure"], fig_dir / f"gallery-{figs.slug(r['model'], r['task'])}.png")
            labels = "; ".join(f"{e['clean']} → {e['attacked']}" + (f" (target {e['target']})" if e["target"] else "")
                               for e in r["result"].get("examples", []))
            gallery.append((f"{r['model']} / {r['task']}: {labels}", path))

    result: dict[str, Path] = {"figures": fig_dir}
    if "md" in formats:
        rel = {k: f"figures/{v.name}" for k, v in paths.items()}
        result["md"] = out / "README.md"
        atomic_write_text(result["md"], markdown(spec, samples, attacks, evaluations, failed, rel))
    if "html" in formats:
        result["html"] = out / "index.html"
        atomic_write_text(result["html"], _html(spec, attacks, evaluations, failed, paths, gallery, versions, samples))
    if "json" in formats:
        result["json"] = out / "results.json"
        doc = {"title": spec.title, "dataset": spec.dataset, "samples": samples, "seeds": list(spec.seeds),
               "versions": versions, "rows": attacks, "evaluations": evaluations, "failed": failed}
        atomic_write_text(result["json"], json.dumps(doc, indent=1) + "\n")
    if "csv" in formats:
        result["csv"] = out / "results.csv"
        atomic_write_text(result["csv"], csv_text(attacks))
    written = {p.relative_to(out).as_posix() for p in [*paths.values(), *(p for _, p in gallery), *result.values()]
               if p.is_file()}
    for rel in previous - written:  # figures of models or tasks no longer in the spec, and nothing else
        if figs.FIGURE_RE.match(rel):
            (out / rel).unlink(missing_ok=True)
    with Store(out / STORE_NAME) as store:
        store.set_outputs(written | (previous & set(BOARD_FILES)))  # files of formats not rendered now stay ours
    return result


__all__ = ["FORMATS", "render"]
