"""What a reader of a board needs beside its tables: how to reproduce it (command, spec, versions, device, date)
and a card per model (architecture, parameters, training recipe, the accuracy its maker reported and this
board's). Built from the spec, the store's rows and the zoo's manifest; nothing is loaded or computed."""

from __future__ import annotations

import datetime
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robust.leaderboard.rows import AttackRow
    from robust.runner.spec import Spec


def reproduction(spec: Spec, cells: list[dict], versions: dict, out: Path | None = None,
                 hidden: dict[str, str] | None = None) -> dict:
    """``command`` (from the folder it was run in: with ``--out`` where the board is not the spec's default folder
    and the environment it needs: the ``PYTHONPATH`` a model factory is imported from, ``ROBUST_PLUGINS`` and
    ``ROBUST_PRESETS`` when set), ``spec`` (the spec file's text, None for a spec built in code), ``versions``,
    ``devices`` (where the ``cells`` ran) and ``date`` (UTC, of the last cell that finished). ``hidden``: the
    paths to redact from the spec's text (``robust.leaderboard.public.redactor``)."""
    from robust.leaderboard.public import redact, shown

    path = None if spec.path is None else shown(str(spec.path.resolve()), Path.cwd())  # never a path outside it
    text = spec.path.read_text(encoding="utf-8") if spec.path is not None and spec.path.is_file() else None
    text = text if text is None or not hidden else redact(text, hidden)
    finished = max((c["finished"] for c in cells if c["status"] == "done"), default=None)
    date = None if finished is None else datetime.datetime.fromtimestamp(
        finished, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = None
    if path is not None:
        where = "" if out is None or Path(out).resolve() == spec.default_out.resolve() else \
            f" --out {_quoted(shown(str(Path(out).resolve()), Path.cwd()))}"
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in environment(spec).items())
        command = f"{env + ' ' if env else ''}robust leaderboard run {_quoted(path)}{where}"
    return {"command": command, "spec": text, "versions": versions,
            "devices": sorted({c["device"] for c in cells if c.get("device")}), "date": date}


def _quoted(path: str) -> str:
    """A path for a shell command; one shown by its name only (``…/NAME``) as it is, for the reader to replace."""
    return path if path.startswith("…/") else shlex.quote(path)


def environment(spec: Spec) -> dict[str, str]:
    """The environment the spec's run needs beyond the working folder: ``PYTHONPATH`` for a model factory (or an
    ``?arch=`` factory) whose module is found neither in the installed packages nor in the working folder (the
    robust command imports from there), and ``ROBUST_PLUGINS`` / ``ROBUST_PRESETS`` as they are set."""
    import importlib.util
    import sys

    from robust.models.specs import parse_spec

    folders: list[str] = []
    specs = [m.spec for m in spec.models]
    while specs:
        text = specs.pop()
        try:
            prefix, body, opts = parse_spec(text)
        except ValueError:
            continue
        if isinstance(opts.get("arch"), str):
            specs.append(opts["arch"])
        if prefix != "factory":
            continue
        top = body.split(":")[0].split(".")[0]
        found = importlib.util.find_spec(top)
        origin = Path(found.origin).parent if found is not None and found.origin else None
        if found is not None and found.submodule_search_locations:
            origin = Path(next(iter(found.submodule_search_locations))).parent
        if origin is None or origin.resolve() == Path.cwd().resolve() or "site-packages" in origin.parts:
            continue
        if any(Path(p).resolve() == origin.resolve() for p in sys.path if p):
            folders.append(os.path.relpath(origin))
    env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(folders))} if folders else {}
    for key in ("ROBUST_PLUGINS", "ROBUST_PRESETS"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


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
                      "params": entry.get("params") or (row.params if row else None),
                      "training": entry.get("command") or entry.get("source"),
                      "reported": None if reported is None else {"accuracy": reported, "n": entry.get("test_n")},
                      "clean_acc": row.clean_acc if row else None})
    return cards


def fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in ``text`` (so the text cannot close it)."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    return "`" * max(3, longest + 1)


__all__ = ["environment", "fence", "model_cards", "reproduction"]
