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
from robust.leaderboard.rows import RANK_CAVEAT, Board, ci, pct, ranks

_MD_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$])")


def _md(text: object) -> str:
    """User text as literal GitHub Markdown, inline: line breaks (``\\r`` too) would split a table row, and every
    character that could start markup, a link, an HTML tag or an entity is backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _MD_CONTROL.sub(" ", str(text)))


def markdown(board: Board) -> str:
    """The board as GitHub Markdown (``templates/board.md.j2``): one table per threat model, best first, with Wilson
    95 % intervals; every string from a user or a file escaped (``_md``)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("robust.leaderboard", "templates"), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["md"] = _md
    spec, repro = board.spec, board.reproduction
    realism = realism_rows(spec, board.attacks)
    heldout = has_heldout(realism)
    attack_tables = [{"task": t, "rows": rows, "ranks": ranks(rows), "notes": task_notes(spec, t),
                      "control": any(r.control_asr is not None for r in rows), "skipped": sum(r.skipped for r in rows)}
                     for t, rows in board.tables("attack")]
    evaluations = []
    for t, rows in board.tables("evaluation"):
        ranked = registry.get(t.method, "evaluation").chance != "diagonal"  # a share at chance is not ranked
        evaluations.append({"task": t, "rows": rows, "ranked": ranked, "ranks": ranks(rows) if ranked else
                            ["–"] * len(rows), "chance": chance_note(t, rows), "notes": task_notes(spec, t)})
    text = env.get_template("board.md.j2").render(
        spec=spec, samples=board.samples, measures_note=MEASURES_NOTE, rank_caveat=RANK_CAVEAT,
        labels_note=labels_note(board), cards=board.cards, pct=pct, ci=ci, zip=zip,
        worst=[{"name": w.name, "description": w.description, "rows": w.rows, "ranks": ranks(w.rows),
                "agreement": w.agreement} for w in board.worst],
        attack_tables=attack_tables, evaluations=evaluations,
        realism=[{"row": r, "cells": realism_cells(r, heldout)} for r in realism], heldout=heldout,
        realism_text=REALISM_TEXT + (" " + HELDOUT_TEXT if heldout else ""),
        figures={k: f"figures/{p.name}" for k, p in board.figures.items()}, robust_scope=robust_accuracy_scope(board),
        frontier=frontier_rows(board), frontier_text=FRONTIER_TEXT, pending=board.pending, failed=board.failed,
        reproduction=repro, fence=cards.fence(repro["spec"]) if repro.get("spec") is not None else "",
        versions_text=", ".join(f"{k} {v}" for k, v in sorted(repro["versions"].items())))
    return text.rstrip("\n") + "\n"
