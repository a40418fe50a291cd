"""What a reader of a board needs beside its tables: how to reproduce it (command, spec, versions, device, date)
and a card per model (architecture, parameters, training recipe, the accuracy its maker reported and this
board's). Built from the spec, the store's rows and the zoo's manifest; nothing is loaded or computed."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robust.leaderboard.tables import AttackRow
    from robust.runner.spec import Spec


def reproduction(spec: Spec, cells: list[dict], versions: dict) -> dict:
    """``command`` (from the folder it was run in), ``spec`` (the spec file's text, None for a spec built in code),
    ``versions``, ``devices`` (where the ``cells`` ran) and ``date`` (UTC, of the last cell that finished)."""
    path = None if spec.path is None else Path(os.path.relpath(spec.path)) if spec.path.is_absolute() else spec.path
    text = spec.path.read_text(encoding="utf-8") if spec.path is not None and spec.path.is_file() else None
    finished = max((c["finished"] for c in cells if c["status"] == "done"), default=None)
    date = None if finished is None else datetime.datetime.fromtimestamp(
        finished, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return {"command": f"robust leaderboard run {path}" if path else None, "spec": text, "versions": versions,
            "devices": sorted({c["device"] for c in cells if c.get("device")}), "date": date}


def model_cards(spec: Spec, attacks: list[AttackRow]) -> list[dict]:
    """One card per model of the spec: ``name``, ``spec``, ``architecture`` (as the cells saw it), ``params``,
    ``training`` (the recorded command or source), ``reported`` accuracy (the zoo's, with its image count) and
    ``clean_acc`` on this board (None where unknown)."""
    from robust.models.zoo import list_models

    zoo = list_models()
    seen = {r.name: r for r in attacks}
    cards = []
    for m in spec.models:
        entry = zoo.get(m.spec.removeprefix("zoo:").split("?")[0], {}) if m.spec.startswith("zoo:") else {}
        row = seen.get(m.name)
        reported = entry.get("test_accuracy")
        cards.append({"name": m.name, "spec": m.spec, "architecture": row.architecture if row else None,
                      "params": entry.get("params"), "training": entry.get("command") or entry.get("source"),
                      "reported": None if reported is None else {"accuracy": reported, "n": entry.get("test_n")},
                      "clean_acc": row.clean_acc if row else None})
    return cards


def fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in ``text`` (so the text cannot close it)."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


__all__ = ["fence", "model_cards", "reproduction"]
