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
    """How to reproduce a board: the command, the spec, the versions, the devices and the date.

    Paths are shown relative to the working folder, never outside it (``robust.leaderboard.public.shown``).

    Args:
        spec: the board's spec (the real one, with its file).
        cells: the store's rows of the board's cells.
        versions: the versions that computed the cells.
        out: the board folder (a ``--out`` is added to the command when it is not the spec's default folder).
        hidden: the paths to redact from the spec's text (``robust.leaderboard.public.redactor``).

    Returns:
        ``command`` (from the folder it was run in, with the environment it needs: see ``environment``; None for a
        spec built in code), ``spec`` (the spec file's text, None for a spec built in code), ``versions``,
        ``devices`` (where the ``cells`` ran, sorted) and ``date`` (UTC, of the last cell that finished; None when
        none did).

    Examples:
        >>> import os
        >>> from pathlib import Path
        >>> from unittest import mock
        >>> from robust.leaderboard.cards import reproduction
        >>> from robust.runner import load_spec
        >>> _ = Path("quick.toml").write_text('''
        ... dataset = "digits-m"
        ... models = ["zoo:digits-m/resnet"]
        ... evaluations = ["patch-drop"]
        ... ''')
        >>> cells = [{"status": "done", "finished": 0.0, "device": "cpu"}]
        >>> with mock.patch.dict(os.environ, {"ROBUST_PLUGINS": "", "ROBUST_PRESETS": ""}):
        ...     how = reproduction(load_spec("quick.toml"), cells, {"robust": "0.1.0"}, out="boards/quick")
        >>> how["command"], how["devices"], how["date"]
        ('robust leaderboard run quick.toml --out boards/quick', ['cpu'], '1970-01-01 00:00 UTC')
    """
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
    """The environment the spec's run needs beyond the working folder, for the board's reproduction command.

    ``PYTHONPATH`` for a model factory (or an ``?arch=`` factory) whose module is found neither in the installed
    packages nor in the working folder (the robust command imports from there) but on ``sys.path``, as a path
    relative to the working folder; ``ROBUST_PLUGINS`` and ``ROBUST_PRESETS`` as they are set (when not empty).

    Args:
        spec: the spec.

    Returns:
        Variable -> value (empty when the run needs nothing).

    Examples:
        >>> import os
        >>> from unittest import mock
        >>> from robust.leaderboard.cards import environment
        >>> from robust.runner import parse_spec
        >>> spec = parse_spec({"dataset": "digits-m", "models": ["zoo:digits-m/resnet"], "evaluations": ["patch-drop"]})
        >>> with mock.patch.dict(os.environ, {"ROBUST_PLUGINS": "", "ROBUST_PRESETS": "my-presets"}):
        ...     environment(spec)
        {'ROBUST_PRESETS': 'my-presets'}
    """
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
    """One card per model of the spec, in spec order: what the board says about each model beside its scores.

    The zoo's manifest gives a ``zoo:`` model's parameters, training command and reported accuracy; the attack rows
    give what the cells saw (nothing is loaded).

    Args:
        spec: the board's spec.
        attacks: the board's attack rows (the first row of each model is used).

    Returns:
        One dict per model: ``name``, ``spec``, ``architecture`` (as the cells saw it), ``params``, ``training``
        (the recorded command or source), ``reported`` accuracy (the zoo's: ``{"accuracy", "n"}``) and
        ``clean_acc`` on this board; None where unknown.

    Examples:
        >>> from robust.leaderboard.cards import model_cards
        >>> from robust.runner import parse_spec
        >>> spec = parse_spec({"dataset": "digits-m", "models": ["zoo:digits-m/resnet"], "evaluations": ["patch-drop"]})
        >>> card = model_cards(spec, [])[0]
        >>> card["training"], card["reported"]["n"], card["architecture"], card["clean_acc"]
        ('robust zoo train resnet --epochs 4 --seed 0', 1000, None, None)
    """
    from robust.models.specs import defended_parts
    from robust.models.zoo import list_models

    zoo = list_models()
    seen = {r.name: r for r in attacks}
    cards = []
    for m in spec.models:
        defence, options, base = defended_parts(m.spec) if m.spec.startswith("defense:") else (None, {}, m.spec)
        entry = zoo.get(base.removeprefix("zoo:").split("?")[0], {}) if base.startswith("zoo:") else {}
        row = seen.get(m.name)
        reported = None if defence else entry.get("test_accuracy")  # the zoo reports the base's, not the defence's
        training = entry.get("command") or entry.get("source")
        if defence:  # what it wraps, with the defence's own parameters
            shown = ", ".join(f"{k}={v}" for k, v in options.items())
            training = f"{defence}({shown}) around {base}" + (f", trained by: {training}" if training else "")
        cards.append({"name": m.name, "spec": m.spec, "architecture": row.architecture if row else None,
                      "params": entry.get("params") or (row.params if row else None), "training": training,
                      "reported": None if reported is None else {"accuracy": reported, "n": entry.get("test_n")},
                      "clean_acc": row.clean_acc if row else None})
    return cards


def parameter_count(n: int | None) -> str:
    """A model's parameter count as its card shows it: in millions from 10,000 up, exactly below (a 3,000-parameter
    model is not "0.00 M"), "–" when unknown.

    Args:
        n: the count, or None.

    Returns:
        The text.

    Examples:
        >>> from robust.leaderboard.cards import parameter_count
        >>> parameter_count(321_000), parameter_count(2_954), parameter_count(None)
        ('0.32 M', '2,954', '–')
    """
    if n is None:
        return "–"
    return f"{n / 1e6:.2f} M" if n >= 10_000 else f"{n:,}"


def fence(text: str) -> str:
    """A Markdown code fence longer than any run of backticks in ``text`` (so the text cannot close it).

    Args:
        text: the text to put between the fences.

    Returns:
        At least three backticks, one more than the longest run in ``text``.

    Examples:
        >>> from robust.leaderboard.cards import fence
        >>> fence("plain text"), fence("a ```` run")
        ('```', '`````')
    """
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    return "`" * max(3, longest + 1)


__all__ = ["environment", "fence", "model_cards", "parameter_count", "reproduction"]
