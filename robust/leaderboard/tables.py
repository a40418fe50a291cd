"""Board rows from the store: one per model and attack (seeds merged by summing counts), one per model and
evaluation (curves averaged over seeds), one per failed cell; and their Markdown, JSON and CSV forms.

JSON rows extend RobustBench's model-card fields (``name``, ``architecture``, ``dataset``, ``clean_acc``) with
``attack``, ``area``, ``asr``, ``tcs``, their intervals and ``n``.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict

from robust.metrics import Counts
from robust.runner.spec import Spec

#: evaluations whose summary is better when lower (the others are accuracies)
LOWER_IS_BETTER = {"selectivity", "selectivity-rise"}
_COUNT_FIELDS = ("n", "clean_correct", "adv_correct", "success", "target_hit", "success_all", "target_hit_all",
                 "skipped", "targeted")
CSV_FIELDS = ("name", "model", "architecture", "dataset", "clean_acc", "attack", "threat_model", "area", "eps",
              "asr", "asr_low", "asr_high", "tcs", "tcs_low", "tcs_high", "robust_acc", "n", "seeds", "artifact")


def _rnd(v: float | None, k: int = 4) -> float | None:
    return None if v is None else round(v, k)


def _groups(spec: Spec, cells: list[dict], kind: str):
    """(model entry, task, finished cells of every seed) for each model and task of ``kind``, in spec order."""
    merged: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cells:
        if c["kind"] == kind and c["status"] == "done":
            merged[c["model"], c["task"]].append(c)
    for m in spec.models:
        for t in spec.tasks:
            if t.kind == kind and merged.get((m.name, t.name)):
                yield m, t, merged[m.name, t.name]


def attack_rows(spec: Spec, cells: list[dict]) -> list[dict]:
    """One row per model and attack, in spec order, seeds merged."""
    rows = []
    for m, t, group in _groups(spec, cells, "attack"):
        counts = sum((Counts(**{f: g["result"][f] for f in _COUNT_FIELDS}) for g in group), Counts())
        first = group[0]["result"]
        asr, tcs = counts.interval("asr") or (None, None), counts.interval("tcs") or (None, None)
        rows.append({
            "name": m.name, "model": m.spec, "architecture": first.get("architecture"), "dataset": spec.dataset,
            "clean_acc": _rnd(counts.clean_accuracy), "attack": t.name, "threat_model": t.description or t.name,
            "targeted": counts.targeted, "area": t.params.get("area"), "eps": t.params.get("eps"),
            "asr": _rnd(counts.asr), "asr_interval": [_rnd(v) for v in asr] if asr[0] is not None else None,
            "tcs": _rnd(counts.tcs), "tcs_interval": [_rnd(v) for v in tcs] if tcs[0] is not None else None,
            "robust_acc": _rnd(counts.robust_accuracy), "n": counts.n, "seeds": sorted(g["seed"] for g in group),
            "artifact": (first.get("artifact") or {}).get("name"),
            "seconds": round(sum(g["seconds"] or 0 for g in group), 2)})
    return rows


def evaluation_rows(spec: Spec, cells: list[dict]) -> list[dict]:
    """One row per model and evaluation: the curve (mean over the cells' seeds) and its area."""
    rows = []
    for m, t, group in _groups(spec, cells, "evaluation"):
        curves = [g["result"] for g in group]
        k = len(curves)
        mean = [sum(c["mean"][i] for c in curves) / k for i in range(len(curves[0]["x"]))]
        std = [max(c["std"][i] for c in curves) for i in range(len(curves[0]["x"]))]
        rows.append({"name": m.name, "model": m.spec, "dataset": spec.dataset, "evaluation": t.name,
                     "method": t.method, "description": t.description, "x": curves[0]["x"], "mean": mean,
                     "std": std, "area": sum(c["area"] for c in curves) / k, "n": curves[0]["n"],
                     "curve_seeds": curves[0]["seeds"], "xlabel": curves[0]["xlabel"],
                     "ylabel": curves[0]["ylabel"], "lower_is_better": t.method in LOWER_IS_BETTER,
                     "seeds": sorted(g["seed"] for g in group)})
    return rows


def failed_rows(cells: list[dict]) -> list[dict]:
    """Failed cells grouped by model and error (a model that does not load fails every task the same way)."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in cells:
        if c["status"] == "failed":
            groups[c["model"], c["error"]].append(f"{c['task']} (seed {c['seed']})")
    return [{"name": name, "error": error, "tasks": ", ".join(tasks)} for (name, error), tasks in groups.items()]


def rank_key(row: dict) -> tuple:
    """Most robust first: lowest TCS (targeted) or ASR (untargeted), then highest clean accuracy."""
    score = row["tcs"] if row["targeted"] else row["asr"]
    return (1.0 if score is None else score, -(row["clean_acc"] or 0.0), row["name"])


def pct(v: float | None) -> str:
    """A rate as a percentage with one decimal ("–" when undefined)."""
    return "–" if v is None else f"{100 * v:.1f}"


def ci(iv: list | None) -> str:
    """An interval as "[lo, hi]" in percent ("" when undefined)."""
    return "" if not iv else f"[{100 * iv[0]:.1f}, {100 * iv[1]:.1f}]"


_MD_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$])")


def _md(text: object) -> str:
    """User text as literal GitHub Markdown, inline: line breaks (``\\r`` too) would split a table row, and every
    character that could start markup, a link, an HTML tag or an entity is backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _MD_CONTROL.sub(" ", str(text)))


def markdown(spec: Spec, samples: int, attacks: list[dict], evaluations: list[dict], failed: list[dict],
             figures: dict[str, str] | None = None, footer: str = "") -> str:
    """The board as GitHub Markdown: one table per threat model, best first, with Wilson 95 % intervals."""
    seeds = ", ".join(map(str, spec.seeds))
    lines = [f"# {_md(spec.title)}", "",
             f"Dataset `{_md(spec.dataset)}`, first {samples} test images, seeds {seeds}. Percentages; brackets: "
             "Wilson 95 % intervals. Ranked most robust first (lowest TCS for targeted attacks, lowest ASR for "
             "untargeted).", ""]
    for task in spec.tasks:
        rows = sorted((r for r in attacks if r["attack"] == task.name), key=rank_key)
        if task.kind != "attack" or not rows:
            continue
        lines += [f"## {_md(task.name)}", "", f"{_md(task.description)}", ""]
        lines += ["| # | model | architecture | clean acc | ASR | TCS | n |", "|---|---|---|---|---|---|---|"]
        for i, r in enumerate(rows, 1):
            tcs = f"{pct(r['tcs'])} {ci(r['tcs_interval'])}" if r["targeted"] else "–"
            lines.append(f"| {i} | {_md(r['name'])} | {_md(r['architecture'] or '')} | {pct(r['clean_acc'])} | "
                         f"{pct(r['asr'])} {ci(r['asr_interval'])} | {tcs} | {r['n']} |")
        lines.append("")
    for task in spec.tasks:
        rows = [r for r in evaluations if r["evaluation"] == task.name]
        if task.kind != "evaluation" or not rows:
            continue
        rows.sort(key=lambda r: r["area"] if r["lower_is_better"] else -r["area"])
        xs = rows[0]["x"]
        better = "lower" if rows[0]["lower_is_better"] else "higher"
        lines += [f"## {_md(task.name)}", "", f"{_md(task.description)} ({better} is better; "
                  f"{rows[0]['curve_seeds']} seeds per cell, ± the largest seed std).", ""]
        lines += ["| # | model | area | " + " | ".join(f"{x:.2g}" for x in xs) + " |",
                  "|---|---|---|" + "---|" * len(xs)]
        for i, r in enumerate(rows, 1):
            pts = " | ".join(f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(r["mean"], r["std"], strict=True))
            lines.append(f"| {i} | {_md(r['name'])} | {100 * r['area']:.1f} | {pts} |")
        lines.append("")
        if figures and task.name in figures:
            lines += [f"![{_md(task.name)}]({figures[task.name]})", ""]
    if figures and "heatmap" in figures:
        lines += ["## TCS heatmap", "", f"![TCS heatmap]({figures['heatmap']})", ""]
    if failed:
        lines += ["## Failed cells", "", "| model | tasks | error |", "|---|---|---|"]
        lines += [f"| {_md(f['name'])} | {_md(f['tasks'])} | {_md(f['error'])} |" for f in failed]
        lines.append("")
    if footer:
        lines += [footer, ""]
    return "\n".join(lines)


def _csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (leading ``= + - @``, tab or carriage return) gets a
    leading quote (OWASP's rule for CSV injection); numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(attacks: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in attacks:
        flat = {**r, "asr_low": (r["asr_interval"] or [None])[0], "asr_high": (r["asr_interval"] or [None, None])[1],
                "tcs_low": (r["tcs_interval"] or [None])[0], "tcs_high": (r["tcs_interval"] or [None, None])[1]}
        writer.writerow({k: _csv_cell(v) for k, v in flat.items()})
    return buf.getvalue()
