"""Named threat models and evaluations: the TOML presets in ``attacks/`` (installed as the package
data ``robust.attack_presets``).

A preset names one attack (``attack = "gan-patch"``) or one occlusion evaluation (``evaluation = "patch-drop"``)
with its constructor ``[params]``; trained attacks add ``[train]`` (the recipe used when no artifact exists yet).
Suites and leaderboard specs refer to presets by file name, or give the same keys inline. Unknown keys are
errors that name the key and the valid ones.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from robust.checks import InputError, check_keys, did_you_mean
from robust.registry import Method, attacks, evaluations, get, shipped_presets_dir, trained

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ATTACK_KEYS = {"description", "attack", "targeted", "target", "params", "train"}
EVALUATION_KEYS = {"description", "evaluation", "params"}


@dataclasses.dataclass(frozen=True)
class Task:
    """One column of a board: an attack or an evaluation, with everything needed to rebuild it."""

    name: str
    kind: str  # "attack" or "evaluation"
    method: str  # the registered attack or evaluation name
    params: dict
    train: dict
    description: str = ""

    def config(self) -> dict:
        """What determines this task's results (hashed into a cell's key)."""
        return {"kind": self.kind, "method": self.method, "params": self.params, "train": self.train}

    @property
    def targeted(self) -> bool:
        return self.kind == "attack" and bool(self.params.get("targeted", get(self.method, "attack").targeted))

    def build_attack(self, seed: int, artifact: str | os.PathLike | None = None,
                     num_classes: int | None = None) -> object:
        """This attack task's attack under ``seed``; a trained attack with an
        ``artifact`` is loaded from it (``num_classes``: what it must have been trained for), the options it fixes
        checked against what it records. One road for the runner's cells and ``robust attack run``.

        >>> load_preset("lavan-12pct").build_attack(seed=0).steps  # doctest: +SKIP
        100
        """
        entry = get(self.method, "attack")
        params = {**self.params, "seed": seed}
        if artifact is None:
            return entry.make(**params)
        if not entry.trained:
            raise InputError(f"an artifact is for trained attacks; {self.method!r} is not trained.")
        return entry.build.load(artifact, num_classes=num_classes, **params)


def _registered(method: object, kind: str, where: str) -> Method:
    """The registry's ``kind`` named ``method``; an unknown one is an error that names ``where``."""
    try:
        return get(method, kind)
    except ValueError as e:
        if isinstance(method, str) and method in list_presets():  # a preset where a method goes: say how to use it
            raise InputError(f"{where}: {kind} {method!r} is a preset, not a method; expected {{ preset = "
                             f"{method!r}, name = ..., params = {{...}} }} (or {kind} = one of the methods).") from None
        raise InputError(f"{where}: {e}") from None


def parse_task(name: str, table: dict, where: str | None = None) -> Task:
    """A ``Task`` from a preset's keys (a preset file's content, or an inline table of a spec)."""
    where = where or f"preset {name!r}"
    if not isinstance(table, dict):
        raise InputError(f"{where} is not valid; expected a table with 'attack' or 'evaluation'.")
    params = table.get("params", {})
    if not isinstance(params, dict):
        raise InputError(f"{where}: params={params!r} is not valid; expected a table.")
    if ("attack" in table) == ("evaluation" in table):
        raise InputError(f"{where} is not valid; expected exactly one of the keys 'attack' and 'evaluation'.")
    kind = "attack" if "attack" in table else "evaluation"
    check_keys(table, ATTACK_KEYS if kind == "attack" else EVALUATION_KEYS, where)
    method = table[kind]
    entry = _registered(method, kind, where)
    if kind == "attack" and "seed" in params:
        raise InputError(f"{where}: params key 'seed' is set by the run's seeds, not by the preset.")
    accepted = entry.params()
    if "targeted" in table and "targeted" not in accepted and bool(table["targeted"]) != entry.targeted:
        raise InputError(f"{where}: targeted={table['targeted']!r} is not valid; {method} is always "
                         f"{'targeted' if entry.targeted else 'untargeted'}.")
    params = dict(params)
    if "targeted" in table and "targeted" in accepted:  # else the key only restates what the method always does
        params["targeted"] = table["targeted"]
    if "target" in table:
        params["target"] = table["target"]
    if "targeted" in accepted and "targeted" not in params:  # the effective flag is part of the key: a method
        params["targeted"] = bool(accepted["targeted"].default)  # default that changes cannot reuse stale cells
    train = table.get("train", {})
    if not isinstance(train, dict):
        raise InputError(f"{where}: train={train!r} is not valid; expected a table.")
    if train and not entry.trained:
        raise InputError(f"{where}: {method} is not trained; the key 'train' is for {sorted(trained())}.")
    check_keys(train, set(entry.train_options()), f"{where} [train]")
    try:
        entry.make(**params)  # validates every parameter now, not in the middle of a run
    except ValueError as e:
        raise InputError(f"{where}: {e}") from None
    return Task(name, kind, method, params, dict(train), str(table.get("description", "")))


def preset_dirs(extra: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Where presets are looked up, first match wins: ``extra``, ``$ROBUST_PRESETS`` (os.pathsep-separated), the
    shipped presets."""
    env = [p for p in os.environ.get("ROBUST_PRESETS", "").split(os.pathsep) if p]
    return [Path(p) for p in (*extra, *env)] + [shipped_presets_dir()]


def list_presets(extra: Sequence[str | os.PathLike] = ()) -> dict[str, Path]:
    """Preset name -> file, over the search path."""
    found: dict[str, Path] = {}
    for folder in preset_dirs(extra):
        for path in sorted(Path(folder).glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def load_preset(name: str, extra: Sequence[str | os.PathLike] = ()) -> Task:
    """The preset ``name`` (a file name without ``.toml``) from the search path."""
    known = list_presets(extra)
    if name not in known:
        methods = {**attacks(), **evaluations()}
        if name in methods:  # a method where a preset is asked for: say which presets run it
            runs = sorted(k for k in known if _method_of(known[k]) == name)
            raise InputError(f"preset {name!r} is unknown: {name} is a method, not a preset; expected a preset, e.g. "
                             f"{', '.join(runs) or '(none ships)'}, or an inline table {{ attack = {name!r}, "
                             "params = {...} }.")
        raise InputError(f"preset {name!r} is unknown{did_you_mean(name, known)}; expected one of "
                         f"{sorted(known)}.")
    path = known[name]
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"preset {name!r} ({path}) is not valid TOML: {e}") from None
    return parse_task(name, table, f"preset {name!r} ({path})")


def method_preset(name: str, kind: str, extra: Sequence[str | os.PathLike] = ()) -> Task | None:
    """The ``kind`` ('attack' or 'evaluation') preset named ``name`` when ``name`` is not a registered method of
    that kind (None when it is): one vocabulary, so a preset works wherever a method does. A name that is neither is
    an error suggesting the close methods and presets; a preset of the other kind is an error too.

    >>> method_preset("lavan-12pct", "attack").params["steps"], method_preset("lavan", "attack")
    (100, None)
    """
    methods = attacks() if kind == "attack" else evaluations()
    if name in methods:
        return None
    known = list_presets(extra)
    if not isinstance(name, str) or name not in known:
        raise InputError(f"{kind} {name!r} is unknown{did_you_mean(name, [*methods, *known])}; expected a method "
                         f"({', '.join(sorted(methods))}) or an {kind} preset (robust presets list).")
    task = load_preset(name, extra)
    if task.kind != kind:
        raise InputError(f"{name!r} is an {task.kind} preset; expected an {kind} here.")
    return task


def _method_of(path: Path) -> str | None:
    """The method a preset file names, or None when it cannot be read (an error only when it is loaded)."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return table.get("attack") or table.get("evaluation")


__all__ = ["ATTACK_KEYS", "EVALUATION_KEYS", "Task", "list_presets", "load_preset", "method_preset",
           "parse_task", "preset_dirs", "shipped_presets_dir"]
