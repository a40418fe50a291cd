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
    """One column of a board: an attack or an evaluation, with everything needed to rebuild it.

    A preset file or a spec's inline table becomes one through ``parse_task``; ``config()`` (kind, method, params,
    train) is what is hashed into a cell's key, so the name and description can change without invalidating results.

    Attributes:
        name: the column's name (the preset's file name, or the name an inline table gives).
        kind: ``"attack"`` or ``"evaluation"``.
        method: the registered attack or evaluation name.
        params: the constructor keywords (an attack's ``targeted`` and ``target`` included; never ``seed``, which
            the run's seeds set).
        train: a trained attack's ``[train]`` recipe, used when no artifact exists yet (empty otherwise).
        description: one line for lists and boards (default empty).

    Examples:
        >>> from robust.presets import load_preset
        >>> task = load_preset("lavan-12pct")
        >>> task.kind, task.method, task.params["area"], task.targeted
        ('attack', 'lavan', 0.12, True)
        >>> sorted(task.config())
        ['kind', 'method', 'params', 'train']
    """

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
    """A ``Task`` from a preset's keys (a preset file's content, or an inline table of a spec).

    Every key and parameter is checked now, not in the middle of a run: the method must be registered, the
    parameters accepted by its constructor (it is built once), ``[train]`` only for a trained attack and only with
    its training options. The top-level ``targeted`` and ``target`` keys go into ``params``; a method that takes
    ``targeted`` gets its effective value written in, so that a changed default cannot reuse stale cells.

    Args:
        name: the task's name (a preset's file name, or the name an inline table gives).
        table: the keys: exactly one of ``attack`` or ``evaluation``, and optionally ``description``, ``params``
            and, for an attack, ``targeted``, ``target`` and ``train``.
        where: how errors name the table (default ``preset 'NAME'``).

    Returns:
        The task, its ``params`` a new dict.

    Raises:
        InputError: a table that is not one, both or neither of ``attack`` and ``evaluation``, an unknown key,
            method or parameter (a preset's name where a method goes says how to use it), ``seed`` in an attack's
            params, a ``targeted`` the method cannot honour, or ``train`` for an attack that is not trained.

    Examples:
        >>> from robust.presets import parse_task
        >>> parse_task("short-lavan", {"attack": "lavan", "params": {"steps": 5}})
        Task(name='short-lavan', kind='attack', method='lavan', params={'steps': 5, 'targeted': True}, train={},
             description='')
        >>> parse_task("both", {"attack": "lavan", "evaluation": "patch-drop"})
        Traceback (most recent call last):
        ...
        robust.checks.InputError: preset 'both' is not valid; expected exactly one of the keys 'attack' and
        'evaluation'.
    """
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
    shipped presets.

    Args:
        extra: folders searched before all others (a spec's or the command line's own presets).

    Returns:
        The folders, in search order; the shipped presets' folder (``shipped_presets_dir()``) always last. They need
        not exist.

    Examples:
        >>> from robust.presets import preset_dirs
        >>> from robust.registry import shipped_presets_dir
        >>> dirs = preset_dirs(["my-presets"])
        >>> dirs[0], dirs[-1] == shipped_presets_dir()
        (PosixPath('my-presets'), True)
    """
    env = [p for p in os.environ.get("ROBUST_PRESETS", "").split(os.pathsep) if p]
    return [Path(p) for p in (*extra, *env)] + [shipped_presets_dir()]


def list_presets(extra: Sequence[str | os.PathLike] = ()) -> dict[str, Path]:
    """Preset name -> file, over the search path (``preset_dirs``).

    A preset is a ``*.toml`` file; its name is the file name without ``.toml``. A name found in an earlier folder
    hides the same name further down the path. The files are not read here.

    Args:
        extra: folders searched before ``$ROBUST_PRESETS`` and the shipped presets.

    Returns:
        A new dict, name -> path, each folder's names in sorted order, earlier folders first.

    Examples:
        >>> from pathlib import Path
        >>> from robust.presets import list_presets
        >>> "lavan-12pct" in list_presets()
        True
        >>> Path("mine").mkdir()
        >>> _ = Path("mine/lavan-12pct.toml").write_text('attack = "lavan"')
        >>> list_presets(["mine"])["lavan-12pct"]
        PosixPath('mine/lavan-12pct.toml')
    """
    found: dict[str, Path] = {}
    for folder in preset_dirs(extra):
        for path in sorted(Path(folder).glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def load_preset(name: str, extra: Sequence[str | os.PathLike] = ()) -> Task:
    """The preset ``name`` (a file name without ``.toml``) from the search path, read and checked (``parse_task``).

    Args:
        name: the preset's name.
        extra: folders searched before ``$ROBUST_PRESETS`` and the shipped presets.

    Returns:
        The preset's task.

    Raises:
        InputError: an unknown name (suggesting close ones; a method's name says which presets run it), a file
            that is not valid TOML, or any error of ``parse_task``.

    Examples:
        >>> from robust.presets import load_preset
        >>> task = load_preset("patch-drop")
        >>> task.kind, task.method, task.params
        ('evaluation', 'patch-drop', {'seeds': 3})
        >>> load_preset("lavan")
        Traceback (most recent call last):
        ...
        robust.checks.InputError: preset 'lavan' is unknown: lavan is a method, not a preset; expected a preset, e.g.
        lavan-12pct, lavan-8pct, lavan-ref-12pct, or an inline table { attack = 'lavan', params = {...} }.
    """
    known = list_presets(extra)
    if name not in known:
        methods = {**attacks(), **evaluations()}
        if name in methods:  # a method where a preset is asked for: say which presets run it
            runs = sorted(k for k in known if _method_of(known[k]) == name)
            raise InputError(f"preset {name!r} is unknown: {name} is a method, not a preset; expected a preset, e.g. "
                             f"{', '.join(runs) or '(none ships)'}, or an inline table "
                             f"{{ {'attack' if name in attacks() else 'evaluation'} = {name!r}, params = {{...}} }}.")
        raise InputError(f"preset {name!r} is unknown{did_you_mean(name, known)}; expected one of "
                         f"{sorted(known)}.")
    path = known[name]
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"preset {name!r} ({path}) is not valid TOML: {e}") from None
    return parse_task(name, table, f"preset {name!r} ({path})")


def method_preset(name: str, kind: str, extra: Sequence[str | os.PathLike] = ()) -> Task | None:
    """The ``kind`` preset named ``name`` when ``name`` is not a registered method of that kind (None when it is).

    One vocabulary, so a preset works wherever a method does: a registered method wins over a preset of the same
    name.

    Args:
        name: a method's or a preset's name.
        kind: ``"attack"`` or ``"evaluation"``.
        extra: folders searched for presets before ``$ROBUST_PRESETS`` and the shipped presets.

    Returns:
        The preset's task, or None when ``name`` is a registered method of ``kind``.

    Raises:
        InputError: a name that is neither (suggesting the close methods and presets), or a preset of the other
            kind.

    Examples:
        >>> from robust.presets import method_preset
        >>> method_preset("lavan-12pct", "attack").params["steps"], method_preset("lavan", "attack")
        (100, None)
        >>> method_preset("patch-drop", "attack")
        Traceback (most recent call last):
        ...
        robust.checks.InputError: 'patch-drop' is an evaluation preset; expected an attack here.
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
