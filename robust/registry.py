"""What each attack and evaluation is, declared in its own file and asked by every consumer (presets, the CLI, the
runner, the leaderboard, ``robust.testing``): no other module compares a method's name with a string.

An attack or evaluation class registers itself (``@register_attack``, ``@register_evaluation``); its facts are its
class attributes (``name``, ``description`` or the docstring's first line; an attack's ``targeted``, an
evaluation's curve labels, ``higher_is_better``, ``chance`` and named ``variants``: the same class with some
options fixed), its options the keywords of its ``__init__``, and for a trained attack the keywords of its ``fit``
(the training options) and ``resumable``.

Built-in methods are registered when their modules are imported; plugins are modules named in the environment
variable ``ROBUST_PLUGINS`` (comma-separated) or in the ``robust.plugins`` entry-point group, imported on the first
lookup, so a trained attack or a curve written in one module appears in presets, ``robust attack train --help``,
boards and assertions with no edit elsewhere. Like timm's ``register_model``, registration is by decorator.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path

from robust.checks import InputError, did_you_mean

#: keywords of an evaluation that the run sets (its samples, batch size and seed), never a preset
RUN_KEYS = ("samples", "batch_size", "seed")
_ATTACKS: dict[str, Method] = {}
_EVALUATIONS: dict[str, Method] = {}
_DEFENSES: dict[str, Method] = {}
_loaded: list[bool] = [False]


@dataclasses.dataclass(frozen=True)
class Method:
    """One registered attack or evaluation: what every consumer (presets, the CLI, boards, assertions) asks of it.

    Attributes:
        name: the name it is registered and asked for under.
        kind: ``attack``, ``evaluation`` or ``defense``.
        description: one line, for lists and boards.
        build: the class, built with ``fixed`` as keywords.
        fixed: the options a variant fixes (empty for the class itself).
        targeted: an attack aims at target classes (its headline is TCS).
        trained: an attack is trained before use (``fit``, then ``save`` / ``load``).
        resumable: its training continues from a resume file.
        xlabel: an evaluation's x axis, in words.
        ylabel: an evaluation's value, in words.
        higher_is_better: a larger headline means a more robust model.
        control: an occluding patch with no attack in it (its ASR is what occlusion alone does).
        chance: an evaluation's chance level drawn on boards: ``diagonal`` (y = x), ``uniform`` (1 / classes).
        steps: the attack option that sets its per-image steps (a board's frontier varies it), if any.
        pool: it draws donors from the evaluated split, so its results depend on every image of the split.
        note: how to read its figures, printed under its table on every board.

    Examples:
        >>> from robust.registry import attacks, evaluations
        >>> lavan = attacks()["lavan"]
        >>> lavan.targeted, lavan.trained, lavan.headline, lavan.steps
        (True, False, 'tcs', 'steps')
        >>> salient = evaluations()["salient-drop"]
        >>> salient.build.__name__, salient.fixed, salient.headline, salient.higher_is_better
        ('PatchDrop', {'order': 'salient'}, 'area', True)
    """

    name: str
    kind: str
    description: str
    build: Callable
    fixed: dict = dataclasses.field(default_factory=dict)
    targeted: bool = False
    trained: bool = False
    resumable: bool = False
    xlabel: str = ""
    ylabel: str = ""
    higher_is_better: bool = False
    control: bool = False
    chance: str | None = None
    steps: str | None = None
    pool: bool = False
    note: str | None = None

    @property
    def headline(self) -> str:
        return "area" if self.kind == "evaluation" else "tcs" if self.targeted else "asr"

    def params(self) -> dict[str, inspect.Parameter]:
        """The keywords a preset may set: the class's options (along its classes) less what a variant fixes."""
        return {k: p for k, p in _keywords(self.build, "__init__").items() if k not in self.fixed}

    def make(self, *args: object, **params: object) -> object:
        """The attack or evaluation built with ``params``, checked first against its options: an unknown one is
        named with the close ones, one its signature refuses is bad input (``InputError``); a TypeError raised
        inside the constructor is a bug and keeps its traceback.

        >>> get("lavan", "attack").make(steps=5).steps  # doctest: +SKIP
        5
        """
        where = f"{self.kind} {self.name!r}"
        if fixed := sorted(set(self.fixed) & set(params)):
            raise InputError(f"{where} does not take the parameters {sorted(params)}: {fixed[0]!r} is fixed by the "
                             f"{self.kind} ({fixed[0]}={self.fixed[fixed[0]]!r}).")
        accepted = self.params()
        unknown = sorted(k for k in params if k not in accepted)
        if unknown and self.kind == "evaluation" and unknown[0] in RUN_KEYS:
            raise InputError(f"params key {unknown[0]!r} is set by the run (its samples, batch size and seed), not "
                             "by the preset.")
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            raise InputError(f"{where} does not take the parameter {unknown[0]!r}"
                             f"{did_you_mean(unknown[0], accepted)}; expected some of {sorted(accepted)}.")
        try:
            inspect.signature(self.build).bind(*args, **self.fixed, **params)
        except TypeError as e:
            raise InputError(f"{where} does not take the parameters {sorted(params)}: {e}") from None
        return self.build(*args, **self.fixed, **params)

    def train_options(self) -> dict[str, inspect.Parameter]:
        """A trained attack's training options: the keywords of its ``fit`` (less ``progress``, ``resume``,
        ``monitor``, ``stop`` and ``init``, which the caller sets)."""
        if not self.trained:
            return {}
        caller = ("progress", "resume", "monitor", "stop", "init")
        return {k: p for k, p in _keywords(self.build, "fit").items() if k not in caller}


def _keywords(cls: type, method: str) -> dict[str, inspect.Parameter]:
    """Keyword-only parameters of ``cls.method`` along the class chain (a ``**kwargs`` passes on to the parent's)."""
    out: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        fn = klass.__dict__.get(method)
        if fn is None:
            continue
        params = inspect.signature(fn).parameters.values()
        for p in params:
            if p.kind is p.KEYWORD_ONLY:
                out.setdefault(p.name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return out


def _first_line(doc: str | None) -> str:
    return (inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else "").strip()


def _add(table: dict[str, Method], method: Method) -> None:
    if not isinstance(method.name, str) or not method.name or method.name != method.name.strip():
        raise InputError(f"a {method.kind} name must be a non-empty string, got {method.name!r}.")
    known = table.get(method.name)
    if known is not None and (known.build.__module__, known.build.__qualname__) != (
            method.build.__module__, method.build.__qualname__):  # the same definition may register again (reimport)
        raise InputError(f"{method.kind} {method.name!r} is already registered (by {known.build.__module__}); "
                         "expected a new name.")
    table[method.name] = method


def register_attack(cls: type) -> type:
    """Class decorator: register an ``Attack`` subclass under its ``name``.

    The registry reads the class: ``name``, ``description`` (or the docstring's first line), ``targeted``, and the
    keywords of its ``__init__`` (the options a preset may set). A class with a ``fit`` method is a trained attack
    (``fit`` then ``save``; ``load(path, **attack_time_options)``); ``steps_param`` names the option that sets its
    per-image steps, which a board's refinement frontier varies; ``uses_pool = True`` says it draws donors from the
    evaluated split; a ``note`` says how to read its figures, under its table on every board. A plugin module named
    in ``$ROBUST_PLUGINS`` or the ``robust.plugins`` entry points is imported on the first lookup.

    Args:
        cls: the attack class.

    Returns:
        ``cls``, unchanged.

    Raises:
        InputError: the name is taken by another method or by a shipped preset.

    Examples:
        >>> import torch
        >>> from robust.attacks import Attack, AttackResult, make_attack
        >>> from robust.registry import attacks, register_attack
        >>> @register_attack
        ... class Blackout(Attack):
        ...     name, targeted, description = "blackout", False, "a control: every pixel set to black"
        ...     def run(self, model, x, y, target, draws):
        ...         return AttackResult(torch.zeros_like(x))
        >>> attacks()["blackout"].description, make_attack("blackout", seed=3).seed
        ('a control: every pixel set to black', 3)
    """
    trained = callable(getattr(cls, "fit", None))
    _add(_ATTACKS, Method(cls.name, "attack", getattr(cls, "description", "") or _first_line(cls.__doc__), cls,
                          targeted=bool(cls.targeted), trained=trained,
                          resumable=trained and bool(getattr(cls, "resumable", False)),
                          control=bool(getattr(cls, "control", False)), steps=getattr(cls, "steps_param", None),
                          pool=bool(getattr(cls, "uses_pool", False)), note=getattr(cls, "note", None)))
    return cls


def register_evaluation(cls: type) -> type:
    """Class decorator: register an ``Evaluation`` subclass under its ``name``, and each of its ``variants``.

    The registry reads the class: ``name``, ``description`` (or the docstring's first line), ``xlabel``, ``ylabel``,
    ``higher_is_better``, the keywords of its ``__init__`` (the options a preset may set) and ``variants``
    (``{name: (fixed options, description)}``: the same class with those options fixed). ``chance`` is where a
    model that tells nothing apart lies, drawn on boards: ``"diagonal"`` (y = x) or ``"uniform"`` (1 / classes).
    ``uses_pool = True`` says it draws donors from the evaluated split (a board's cell key then hashes the whole
    split); a ``note`` says how to read its curve, under its table on every board.

    Args:
        cls: the evaluation class.

    Returns:
        ``cls``, unchanged.

    Raises:
        InputError: a bad ``chance``, or a name taken by another method or by a shipped preset.

    Examples:
        >>> from robust.evaluations.base import Evaluation, Sweep, correct
        >>> from robust.registry import evaluations, register_evaluation
        >>> @register_evaluation
        ... class Dimming(Evaluation):
        ...     name, description, chance = "dimming", "accuracy as the images are dimmed", "uniform"
        ...     xlabel, ylabel = "brightness", "accuracy"
        ...     def plan(self, model):
        ...         return Sweep(model, [1.0, 0.5, 0.0], [1.0, 0.5, 0.0], {})
        ...     def parameters(self, sweep, images, y, knob, draws, context):
        ...         return {"scale": knob}
        ...     def measure(self, sweep, images, y, params):
        ...         return correct(sweep.model, images * params["scale"], y)
        >>> evaluations()["dimming"].description, evaluations()["dimming"].headline
        ('accuracy as the images are dimmed', 'area')
    """
    if cls.chance not in (None, "diagonal", "uniform"):
        raise InputError(f"chance={cls.chance!r} is not valid; expected None, 'diagonal' or 'uniform'.")
    common = {"xlabel": cls.xlabel, "ylabel": cls.ylabel, "higher_is_better": bool(cls.higher_is_better),
              "chance": cls.chance, "pool": bool(getattr(cls, "uses_pool", False)), "note": getattr(cls, "note", None)}
    _add(_EVALUATIONS, Method(cls.name, "evaluation", cls.description or _first_line(cls.__doc__), cls, **common))
    for variant, (fixed, text) in getattr(cls, "variants", {}).items():
        _add(_EVALUATIONS, Method(variant, "evaluation", text, cls, dict(fixed), **common))
    return cls


def _load() -> None:
    """Import the built-in methods and the plugins, once."""
    if _loaded[0]:
        return
    _loaded[0] = True
    importlib.import_module("robust.attacks")
    importlib.import_module("robust.evaluations")
    importlib.import_module("robust.defenses")
    for module in plugin_modules():
        try:
            importlib.import_module(module)
        except Exception as e:  # a plugin that fails to import is named, with why
            _loaded[0] = False
            raise InputError(f"robust plugin {module!r} could not be imported ({type(e).__name__}: {e}); expected "
                             "an importable module (check ROBUST_PLUGINS and sys.path).") from None
    _refuse_preset_names()


def shipped_presets_dir() -> Path:
    """The folder of the presets that ship with robust: the package ``robust.attack_presets`` (the repository's
    attacks/).

    Here, not in ``robust.presets``, so that the registry, a leaf, can refuse a plugin that takes a shipped name. In a
    source tree on ``sys.path`` that is not installed, it is the ``attacks/`` folder next to the package.

    Returns:
        The folder's path (its ``*.toml`` files are the shipped presets).

    Examples:
        >>> from robust.registry import shipped_presets_dir
        >>> (shipped_presets_dir() / "lavan-12pct.toml").is_file()
        True
    """
    from importlib.resources import files

    try:
        return Path(str(files("robust.attack_presets")))
    except ModuleNotFoundError:  # a source tree on sys.path, not installed: the mapping exists only once installed
        return Path(__file__).resolve().parent.parent / "attacks"


def _refuse_preset_names() -> None:
    """A plugin's method may not take the name of a shipped preset: ``attack run NAME`` would run the plugin while
    specs and suites load the preset, one name with two meanings (as two methods of one name are refused)."""
    shipped = {p.stem for p in shipped_presets_dir().glob("*.toml")}
    for method in (*_ATTACKS.values(), *_EVALUATIONS.values()):
        if method.name in shipped and not method.build.__module__.startswith("robust."):
            _loaded[0] = False
            raise InputError(f"robust plugin {method.build.__module__!r} registers the {method.kind} "
                             f"{method.name!r}, the name of a shipped preset ({method.name}.toml); expected a new "
                             "name (one name may not mean two things).")


def plugin_modules() -> list[str]:
    """Modules that register methods: ``$ROBUST_PLUGINS`` (comma-separated), then the ``robust.plugins`` entry points of
    installed packages.

    They are only named here; the registry imports them on its first lookup.

    Returns:
        The module names, the environment's first (blanks around commas dropped).

    Examples:
        >>> import os
        >>> from unittest import mock
        >>> from robust.registry import plugin_modules
        >>> with mock.patch.dict(os.environ, {"ROBUST_PLUGINS": "mylab.attacks, mylab.curves"}):
        ...     plugin_modules()[:2]
        ['mylab.attacks', 'mylab.curves']
    """
    from importlib.metadata import entry_points

    env = [m.strip() for m in os.environ.get("ROBUST_PLUGINS", "").split(",") if m.strip()]
    return env + [ep.value for ep in entry_points(group="robust.plugins")]


def register_defense(cls: type) -> type:
    """Class decorator: register a patch defence under its ``name``, so that the model spec
    ``defense:NAME?OPTIONS&base=SPEC`` (and a board's ``defense`` table) builds it around any model.

    The class is a ``Backbone`` built as ``cls(model, **options)``; its options are the keywords of its
    ``__init__``, its description the docstring's first line (or ``description``).

    Args:
        cls: the defence class.

    Returns:
        ``cls``, unchanged.

    Raises:
        InputError: the name is taken by another defence.

    Examples:
        >>> from robust.registry import defenses
        >>> sorted(defenses()["patchcleanser"].params())
        ['area', 'chunk', 'fill', 'k']
    """
    _add(_DEFENSES, Method(cls.name, "defense", getattr(cls, "description", "") or _first_line(cls.__doc__), cls))
    return cls


def defenses() -> dict[str, Method]:
    """Every registered defence: the built-in ones, then the plugins' (imported on the first call).

    Returns:
        A new dict, name -> ``Method``, in registration order.

    Examples:
        >>> from robust.registry import defenses
        >>> "patchcleanser" in defenses()
        True
    """
    _load()
    return dict(_DEFENSES)


def attacks() -> dict[str, Method]:
    """Every registered attack: the built-in ones, then the plugins' (imported on the first call).

    Returns:
        A new dict, name -> ``Method``, in registration order.

    Examples:
        >>> from robust.registry import attacks
        >>> [name for name, method in attacks().items() if method.trained][:2]
        ['gan-patch', 'universal-patch']
    """
    _load()
    return dict(_ATTACKS)


def evaluations() -> dict[str, Method]:
    """Every registered evaluation and variant: the built-in ones, then the plugins' (imported on the first call).

    Returns:
        A new dict, name -> ``Method``, in registration order.

    Examples:
        >>> from robust.registry import evaluations
        >>> evaluations()["patch-drop"].ylabel, evaluations()["selectivity"].chance
        ('accuracy', 'diagonal')
    """
    _load()
    return dict(_EVALUATIONS)


def trained() -> dict[str, Method]:
    """The registered attacks that are trained before use (``fit``, then ``save`` / ``load``).

    Returns:
        A new dict, name -> ``Method``, in registration order (plugins imported on the first lookup).

    Examples:
        >>> from robust.registry import trained
        >>> list(trained())[:2]
        ['gan-patch', 'universal-patch']
    """
    return {k: m for k, m in attacks().items() if m.trained}


def get(name: str, kind: str) -> Method:
    """The ``kind`` registered as ``name``.

    Args:
        name: the registered name (a method's, not a preset's).
        kind: ``"attack"``, ``"defense"``, or anything else for an evaluation.

    Returns:
        The registered method.

    Raises:
        InputError: an unknown name (a ``ValueError``), naming the close ones and the valid ones.

    Examples:
        >>> from robust.registry import get
        >>> get("lavan", "attack").targeted, get("patch-drop", "evaluation").higher_is_better
        (True, True)
        >>> get("lavan", "evaluation")
        Traceback (most recent call last):
        ...
        robust.checks.InputError: evaluation 'lavan' is unknown; expected one of [...].
    """
    table = attacks() if kind == "attack" else defenses() if kind == "defense" else evaluations()
    if name not in table:
        raise InputError(f"{kind} {name!r} is unknown{did_you_mean(name, table)}; expected one of {sorted(table)}.")
    return table[name]


def names(kind: str, trained_only: bool = False) -> str:
    """The registered names of ``kind`` as one comma-separated line (for help texts).

    Args:
        kind: ``"attack"``, or anything else for evaluations.
        trained_only: only the trained attacks (then ``kind`` is not looked at).

    Returns:
        The names, sorted, joined by ``", "``.

    Examples:
        >>> from robust.registry import names
        >>> names("attack", trained_only=True)
        'gan-patch, universal-patch'
        >>> "patch-drop" in names("evaluation")
        True
    """
    table = trained() if trained_only else attacks() if kind == "attack" else evaluations()
    return ", ".join(sorted(table))


__all__ = ["RUN_KEYS", "Method", "attacks", "defenses", "evaluations", "get", "names", "plugin_modules",
           "register_attack", "register_defense", "register_evaluation", "shipped_presets_dir", "trained"]
