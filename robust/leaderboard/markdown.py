"""The board as GitHub Markdown: one table per threat model, best first, every user string escaped."""

from __future__ import annotations

import re

from robust import registry
from robust.leaderboard import cards
from robust.leaderboard.build import (
    FRONTIER_TEXT,
    HELDOUT_TEXT,
    MEASURES_NOTE,
    REALISM_TEXT,
    chance_note,
    frontier_rows,
    has_heldout,
    labels_note,
    realism_cells,
    realism_rows,
    robust_accuracy_scope,
    task_notes,
)
from robust.leaderboard.rows import RANK_CAVEAT, AttackRow, Board, ci, pct, ranks

_MD_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$])")


def _md(text: object) -> str:
    """User text as literal GitHub Markdown, inline: line breaks (``\\r`` too) would split a table row, and every
    character that could start markup, a link, an HTML tag or an entity is backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _MD_CONTROL.sub(" ", str(text)))


def _attack_table(rows: list[AttackRow]) -> list[str]:
    """The Markdown table of attack rows (ranked, most robust first), with a control ASR column where any has one."""
    control = any(r.control_asr is not None for r in rows)
    lines = ["| # | model | architecture | clean acc | ASR | " + ("control ASR | " if control else "")
             + "TCS | correct / n |", "|---|---|---|---|---|" + ("---|" if control else "") + "---|---|"]
    for i, r in zip(ranks(rows), rows, strict=True):
        tcs = f"{pct(r.tcs)} {ci(r.tcs_interval)}" if r.targeted else "–"
        lines.append(f"| {i} | {_md(r.name)} | {_md(r.architecture or '')} | {pct(r.clean_acc)} | "
                     f"{pct(r.asr)} {ci(r.asr_interval)} | " + (f"{pct(r.control_asr)} | " if control else "")
                     + f"{tcs} | {r.clean_correct} / {r.n} |")
    return lines


def markdown(board: Board) -> str:
    """The board as GitHub Markdown: one table per threat model, best first, with Wilson 95 % intervals."""
    spec, figures = board.spec, {k: f"figures/{p.name}" for k, p in board.figures.items()}
    seeds = ", ".join(map(str, spec.seeds))
    lines = [f"# {_md(spec.title)}", "",
             f"Dataset `{_md(spec.dataset)}`, first {board.samples} test images, seeds {seeds}. Percentages; "
             f"brackets: Wilson 95 % intervals. {MEASURES_NOTE} ASR and TCS are over the correctly classified "
             "images (correct / n); results.json and results.csv also give them over all n. Ranked most robust "
             "first; a rank is 1 + the number of rows whose interval lies "
             f"wholly below the row's own (more robust beyond doubt). {RANK_CAVEAT} Each image's "
             "target and random draws depend on the seed and the image only, so every model faces the same targets; "
             + ("a single seed is one draw per image: a claim from it is a one-draw claim." if len(spec.seeds) == 1
                else f"the {len(spec.seeds)} seeds are pooled into each row's counts.")
             + (" The board is ranked by the worst case over its patch attacks (first tables): one attack's weakness "
                "cannot make a model look robust." if board.worst else ""), "",
             "Data: [results.json](results.json) (every row, interval and realism summary), "
             "[results.csv](results.csv) (one line per row); how to reproduce this board is at the end.", ""]
    if note := labels_note(board):
        lines += [note, ""]
    lines += ["## Models", "", "| model | spec | architecture | parameters | training | reported accuracy | clean acc "
              "here |", "|---|---|---|---|---|---|---|"]
    for c in board.cards:
        reported = "–" if c["reported"] is None else f"{pct(c['reported']['accuracy'])} (n={c['reported']['n']})"
        params = "–" if c["params"] is None else f"{c['params'] / 1e6:.2f} M"
        lines.append(f"| {_md(c['name'])} | {_md(c['spec'])} | {_md(c['architecture'] or '–')} | {params} | "
                     f"{_md(c['training'] or '–')} | {reported} | {pct(c['clean_acc'])} |")
    lines.append("")
    for worst in board.worst:
        lines += [f"## {_md(worst.name)} (ranks the board)", "", f"{_md(worst.description)}", ""]
        lines += _attack_table(worst.rows)
        agree = ", ".join(f"{_md(name)} {'–' if rho is None else f'{rho:+.2f}'}"
                          for name, rho in worst.agreement.items())
        lines += ["", "Rank agreement with the worst case (Spearman's rho between each attack's ranking of the models "
                  f"and this one's; 1: the same order): {agree}.", ""]
    for task, rows in board.tables("attack"):
        lines += [f"## {_md(task.name)}", "", f"{_md(task.description)}", ""]
        lines += [line for n in task_notes(spec, task) for line in (_md(n), "")]
        control = any(r.control_asr is not None for r in rows)
        lines += _attack_table(rows)
        if control:
            lines += ["", "control ASR: the highest ASR of this board's controls (a noise patch, a patch of another "
                      "image) at the same area on the same model: the success that occlusion alone reaches."]
        if skipped := sum(r.skipped for r in rows):
            lines += ["", f"TCS leaves out the {skipped} images whose target was their own class (they stay in "
                      "ASR and n)."]
        lines.append("")
    if realism := realism_rows(spec, board.attacks):
        heldout = has_heldout(realism)
        lines += ["## Realism of the patches", "", REALISM_TEXT + (" " + HELDOUT_TEXT if heldout else ""), "",
                  "| attack | model | TCS / ASR | SSIM | PSNR | TV | hist | detector AUC |"
                  + (" held-out AUC |" if heldout else ""), "|---" * (9 if heldout else 8) + "|"]
        for r in realism:
            cells = realism_cells(r, heldout)
            rate = f"{pct(r.score)} {ci(r.interval)}" + ("" if r.headline == "tcs" else " (ASR)")
            lines.append(f"| {_md(r.attack)} | {_md(r.name)} | {rate} | "
                         + " | ".join(f"{v} {iv}".strip() for v, iv in cells.values()) + " |")
        lines.append("")
        if "realism" in figures:
            lines += [f"![realism against success]({figures['realism']})", ""]
    for task, rows in board.tables("evaluation"):
        xs = rows[0].x
        ranked = registry.get(task.method, "evaluation").chance != "diagonal"  # a share at chance is not ranked
        lines += [f"## {_md(task.name)}", "", f"{_md(task.description)} ({rows[0].better} is better). Columns: "
                  f"{_md(rows[0].xlabel)} (the fractions actually applied); area: the curve's mean height over "
                  f"[{xs[0]:.3g}, {xs[-1]:.3g}], brackets: its 95 % bootstrap interval over the images; ±: the "
                  f"largest standard deviation over the {rows[0].curve_seeds} random seeds of the cell (the same "
                  "images, other random cells)." + (f" A rank is 1 + the number of rows whose area interval lies "
                                                    f"wholly on the better side of the row's own. {RANK_CAVEAT}"
                                                    if ranked else " Not ranked (below)."), ""]
        lines += ["| # | model | area | " + " | ".join(f"{x:.3g}" for x in xs) + " |",
                  "|---|---|---|" + "---|" * len(xs)]
        for i, r in zip(ranks(rows) if ranked else ["–"] * len(rows), rows, strict=True):
            pts = " | ".join(f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(r.mean, r.std, strict=True))
            lines.append(f"| {i} | {_md(r.name)} | {100 * r.area:.1f} {ci(r.area_interval)} | {pts} |")
        lines.append("")
        if note := chance_note(task, rows):
            lines += [note, ""]
        lines += [line for n in task_notes(spec, task) for line in (_md(n), "")]
        if task.name in figures:
            lines += [f"![{_md(task.name)}]({figures[task.name]})", ""]
    if "heatmap" in figures:
        lines += ["## Heatmap", "", "TCS of the targeted attacks and ASR of the untargeted ones, each on its own "
                  "scale.", "", f"![TCS and ASR heatmap]({figures['heatmap']})", ""]
    if "clean-vs-robust" in figures:
        lines += ["## Clean against robust accuracy", "", f"Robust accuracy: {robust_accuracy_scope(board)}.", "",
                  f"![clean against robust accuracy]({figures['clean-vs-robust']})", ""]
    if "budget" in figures:
        lines += ["## Robustness against budget", "", "Each attack family that the board runs at several patch areas "
                  "(the same method and parameters otherwise): its TCS (ASR if untargeted) per model as the patch "
                  "grows.", "", f"![robustness against budget]({figures['budget']})", ""]
    if frontier := frontier_rows(board):
        lines += ["## The refinement frontier", "", FRONTIER_TEXT, "",
                  "| model | attack family | steps | attack | victim passes / image | s / image | TCS |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {_md(f['model'])} | {_md(f['family'])} | {f['steps']} | {_md(f['attack'])} | {f['passes']} | "
                  f"{f['seconds']} | {f['score']} |" for f in frontier]
        lines.append("")
        if "frontier" in figures:
            lines += [f"![the refinement frontier]({figures['frontier']})", ""]
    if "class-tcs" in figures:
        lines += ["## TCS by target and true class", "", f"Under the worst case {_md(board.worst[0].name)}, per "
                  "model: which targets are easy to reach from which classes (a few images per pair on this board: "
                  "read patterns, not cells).",
                  "", f"![TCS by target and true class]({figures['class-tcs']})", ""]
    if board.pending:
        lines += ["## Pending cells", "", f"Not finished yet ({len(board.pending)}; the run was interrupted or is "
                  "still going, and the same command resumes it): " + ", ".join(_md(p) for p in board.pending) + ".",
                  ""]
    repro = board.reproduction
    lines += ["## Reproduce", ""]
    if repro["command"]:
        lines += [f"From the folder it was run in: `{_md(repro['command'])}` (finished cells are kept in the store; a "
                  "second run only re-renders).", ""]
    lines += [f"Computed {repro['date'] or 'at an unknown time'} on {_md(', '.join(repro['devices']) or 'unknown')}"
              f" with {_md(', '.join(f'{k} {v}' for k, v in sorted(repro['versions'].items())) or 'unknown versions')}"
              ".", ""]
    if repro["spec"] is not None:
        fence = cards.fence(repro["spec"])
        lines += ["The spec:", "", f"{fence}toml", repro["spec"].rstrip("\n"), fence, ""]
    if board.failed:
        lines += ["## Failed cells", "", "| model | tasks | error |", "|---|---|---|"]
        lines += [f"| {_md(f.name)} | {_md(f.tasks)} | {_md(f.error)} |" for f in board.failed]
        lines.append("")
    return "\n".join(lines)
