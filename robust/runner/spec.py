"""Leaderboard specs (TOML): models x (attacks + evaluations) x seeds on one dataset.

```toml
title = "digits-m demo"              # optional
dataset = "digits-m"                 # test split
samples = 500                        # first N test images (default: 500, or all when the split has fewer)
seeds = [0]                          # one cell per model, task and seed
models = ["zoo:digits-m/resnet", { spec = "zoo:digits-m/vit", name = "ViT" }]
attacks = ["gan-patch-12pct", { preset = "pgd-linf-8", name = "pgd-5", params = { steps = 5 } },
           { name = "noise-4pct", attack = "noise-patch", params = { area = 0.04 } },
           { preset = "gan-patch-12pct", name = "gan-critic2", params = { lambda_gan = 2.0 }, models = ["ViT"] }]
evaluations = ["patch-drop", "selectivity"]
```

A model table may say the images its model takes, for a source that does not (a factory returning a plain module,
a ``.pt`` file): ``{ spec = "file:mycnn.pt?arch=mymodel:small_cnn", name = "mine", input_size = [3, 32, 32] }``
(the same as ``?input_size=3x32x32`` in the spec).

A task table's ``models`` (names from ``models``) runs it on those models only: a variant studied on one model.
Such a task is left out of the worst case, which needs every model under the same attacks.

``[notes]`` puts a text under a task's table on the board (``notes = { selectivity = "read with the patch-mixing
curve" }``), after the note its method carries, if any; notes change no cell.

Optional: ``batch_size`` (100), ``device`` ("auto"), ``presets`` (extra preset folders, relative to the spec),
``train_missing`` (true: a trained attack with neither a shipped nor a cached artifact is trained in the run;
false: its cells are recorded as failed, saying so), ``detector`` (true: every patch-attack cell trains the small
detector CNN whose AUC the realism table shows, about 4 s of one CPU core per cell at 500 images of 32 px, more than
a cheap attack takes; false: the table shows SSIM, PSNR, TV and hist only), ``heldout_detector`` (false; true:
the realism table also scores each patch attack with a detector trained on the board's other attacks' patches at
the same model, area and bound, never on its own: a defender who does not know the attack; its patch cells keep
their detector crops in the store, about 1.5 MB each at 500 images of 32 px, and the detectors are trained when the
board renders).
Unknown keys are errors naming the key and the valid ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from robust.checks import InputError, check_keys, check_positive_int, check_seed
from robust.presets import Task, load_preset, parse_task, tomllib

SPEC_KEYS = {"title", "dataset", "samples", "seeds", "batch_size", "device", "presets", "models", "attacks",
             "evaluations", "train_missing", "detector", "heldout_detector", "notes"}
MODEL_KEYS = {"spec", "name", "input_size"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][\w.+-]*$")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    spec: str
    name: str


@dataclasses.dataclass(frozen=True)
class Spec:
    """A validated leaderboard spec: models x (attacks + evaluations) x seeds on one dataset (``parse_spec`` builds it).

    Attributes:
        title: the board's title (default: the spec file's name, or ``leaderboard``).
        dataset: the dataset whose test split is evaluated.
        samples: the first N test images (default 500, capped at the split's size when not given).
        seeds: one cell per model, task and seed (distinct; default ``(0,)``).
        batch_size: images per batch (default 100).
        device: ``auto``, ``cpu``, ``mps`` or ``cuda[:n]`` (default ``auto``).
        models: the models, each a ``ModelEntry`` (its load spec and the name the board shows).
        tasks: the attacks, then the evaluations, as ``Task``.
        path: the file it came from (None for one built in code); the default board folder is beside it.
        train_missing: a trained attack with neither a shipped nor a cached artifact is trained in the run (True) or
            its cells are recorded as failed (False).
        detector: each patch-attack cell trains the detector whose AUC the realism table shows (False: the cheap
            per-image measures only).
        heldout_detector: the realism table also scores each patch attack with a detector trained on the board's
            other attacks' patches (its patch cells keep their crops in the store).
        samples_given: the spec sets ``samples`` (asking for more than the split holds is then an error); False:
            the default, capped at the split's size.
        only: task name -> the model names it is restricted to (a task table's ``models``).
        notes: task name -> the text the board shows under its table.

    Examples:
        >>> from robust.runner.spec import parse_spec
        >>> spec = parse_spec({"dataset": "digits-m", "models": ["zoo:digits-m/resnet"], "evaluations": ["patch-drop"]})
        >>> spec.title, spec.samples, spec.samples_given, spec.seeds, spec.path
        ('leaderboard', 500, False, (0,), None)
        >>> [m.name for m in spec.models], [t.name for t in spec.tasks], spec.runs("zoo:digits-m/resnet", "patch-drop")
        (['zoo:digits-m/resnet'], ['patch-drop'], True)
    """

    title: str
    dataset: str
    samples: int
    seeds: tuple[int, ...]
    batch_size: int
    device: str
    models: tuple[ModelEntry, ...]
    tasks: tuple[Task, ...]
    path: Path | None = None
    train_missing: bool = True
    detector: bool = True  # each patch-attack cell trains the realism table's detector (its AUC)
    heldout_detector: bool = False  # the realism table's held-out detector (trained on the other attacks' patches)
    samples_given: bool = True  # False: the default, capped at the split's size; True: more than it is an error
    only: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # task name -> its model names
    notes: dict[str, str] = dataclasses.field(default_factory=dict)  # task name -> the board's note under its table

    def runs(self, model: str, task: str) -> bool:
        """Whether the task named ``task`` runs on the model named ``model``."""
        return task not in self.only or model in self.only[task]

    @property
    def default_out(self) -> Path:
        """Where the board goes unless told: beside the spec, named after it (``leaderboards/demo/``)."""
        if self.path is None:
            raise InputError("this spec has no file; expected an explicit output directory.")
        return self.path.with_suffix("")


def _models(items: object) -> tuple[ModelEntry, ...]:
    if not isinstance(items, list) or not items:
        raise InputError(f"spec: models={items!r} is not valid; expected a non-empty list of model specs.")
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"spec": item}
        if not isinstance(item, dict) or not isinstance(item.get("spec"), str):
            raise InputError(f"spec: model {item!r} is not valid; expected a load spec or {{spec = ..., name = ...}}.")
        check_keys(item, MODEL_KEYS, f"spec: model {item['spec']!r}")
        spec = item["spec"]
        if "input_size" in item:  # the images it takes, for a source that does not say: part of the spec (and key)
            from robust.models.specs import parse_input_size, with_input_size

            spec = with_input_size(spec, parse_input_size(item["input_size"], f"spec: model {spec!r}: input_size"))
        out.append(ModelEntry(spec, str(item.get("name") or item["spec"])))
    names = [m.name for m in out]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise InputError(f"spec: model {dup[0]!r} is listed twice; expected each model once (give a name).")
    _same_twice([(m.name, m.spec) for m in out], "model")
    return tuple(out)


def _same_twice(items: list[tuple[str, object]], kind: str) -> None:
    """Refuse two names for one computation: a cell is keyed by what it computes, so they would share one row."""
    seen: dict[str, str] = {}
    for name, what in items:
        ident = json.dumps(what, sort_keys=True, default=str)
        if ident in seen:
            raise InputError(f"spec: {kind}s {seen[ident]!r} and {name!r} are the same {kind}; expected each {kind} "
                             "once (one name for one computation).")
        seen[ident] = name


def _restriction(item: object, kind: str, models: tuple[ModelEntry, ...]) -> tuple[str, ...] | None:
    """The model names of a task table's ``models`` key (removed from the table), or None when it has none."""
    if not isinstance(item, dict) or "models" not in item:
        return None
    only, names = item.pop("models"), [m.name for m in models]
    if not isinstance(only, list) or not only or not all(isinstance(n, str) and n in names for n in only) \
            or len(set(only)) != len(only):
        raise InputError(f"spec: {kind} {item.get('name', item.get('preset'))!r}: models={only!r} is not valid; "
                         f"expected a non-empty list of distinct model names from {names}.")
    return tuple(only)


#: parameters that are pixel budgets, shown in 255ths (8/255) when they are whole ones
BUDGETS = ("eps", "bound")


def _value(key: str, v: object) -> str:
    """A parameter as a description shows it: a pixel budget in 255ths as a fraction (8/255), other floats short."""
    if key in BUDGETS and isinstance(v, float) and not v.is_integer() and abs(v * 255 - round(v * 255)) < 1e-6:
        return f"{round(v * 255)}/255"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _shown(params: dict, *, ordered: bool = True) -> str:
    """Parameters as a description lists them: ``key=value`` (``_value``), sorted by key unless ``ordered`` is False."""
    return ", ".join(f"{k}={_value(k, v)}" for k, v in (sorted(params.items()) if ordered else params.items()))


def derived_description(base: Task, params: dict, train: dict) -> str:
    """What a preset with overrides runs, stated by the parameters it uses (the preset's own prose would name the
    values the overrides replaced).

    >>> derived_description(load_preset("pgd-linf-8"), {"steps": 20, "restarts": 1}, {})[:52]
    'lp with eps=8/255, method=pgd, restarts=1, steps=20,'
    """
    from robust.registry import get

    shown, note = _shown({**base.params, **params}), _shown({**params, **train}, ordered=False)
    recipe = f"; trained with {_shown({**base.train, **train}, ordered=False)}" if train else ""
    method = get(base.method, base.kind).description
    return f"{base.method} with {shown}{recipe} (preset {base.name} with {note}): {method}"


def inline_description(task: Task) -> str:
    """What an inline task table without a ``description`` runs, stated by its method and parameters.

    >>> from robust.presets import parse_task
    >>> inline_description(parse_task("c", {"evaluation": "certified", "params": {"k": 4}}))[:33]
    'certified with k=4: PatchCleanser'
    """
    from robust.registry import get

    shown = _shown(task.params)
    return f"{task.method}{' with ' + shown if shown else ''}: {get(task.method, task.kind).description}"


def _task(item: object, kind: str, dirs: list[Path]) -> Task:
    """A preset name, a preset with overrides ``{preset, name, params, train}``, or an inline preset table."""
    if isinstance(item, str):
        task = load_preset(item, dirs)
    elif isinstance(item, dict):
        item = dict(item)
        name = item.pop("name", item.get("preset"))
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InputError(f"spec: {kind} {item!r} is not valid; expected a name (letters, digits, '.', '_', '-').")
        if "preset" in item:
            base = load_preset(item.pop("preset"), dirs)
            check_keys(item, {"params", "train"}, f"spec: {kind} {name!r}")
            for key in ("params", "train"):
                if not isinstance(item.get(key, {}), dict):
                    raise InputError(f"spec: {kind} {name!r}: {key}={item[key]!r} is not valid; expected a table.")
            if "train" in item and base.kind != "attack":
                raise InputError(f"spec: {kind} {name!r}: the key 'train' is for trained attacks; {base.name} is an "
                                 f"{base.kind}.")
            params, train = item.get("params", {}), item.get("train", {})
            described = derived_description(base, params, train) if params or train else base.description
            item = {base.kind: base.method, "params": {**base.params, **params}, "description": described}
            if base.kind == "attack":
                item["train"] = {**base.train, **train}
        task = parse_task(name, item, f"spec: {kind} {name!r}")
        if not task.description:  # an inline table says what it runs, as a preset does
            task = dataclasses.replace(task, description=inline_description(task))
    else:
        raise InputError(f"spec: {kind} {item!r} is not valid; expected a preset name or a table.")
    if task.kind != kind:
        raise InputError(f"spec: {task.name!r} is an {task.kind}; list it under {task.kind}s, not {kind}s.")
    return task


def parse_spec(table: dict, path: str | os.PathLike | None = None) -> Spec:
    """A ``Spec`` from a parsed TOML table, every key checked (the module's docstring lists them).

    Tasks are preset names, presets with overrides (``{ preset, name, params, train }``, described by the
    parameters they use) or inline preset tables; nothing is loaded but the presets.

    Args:
        table: the spec's keys: ``dataset`` and ``models`` are required, and at least one attack or evaluation.
        path: the file it came from: relative ``presets`` folders are under its folder (else the cwd), and the
            board goes beside it.

    Returns:
        The validated spec.

    Raises:
        InputError: an unknown or missing key, a bad value (named with what was expected), a name listed twice, or
            two names for one computation.

    Examples:
        >>> from robust.runner.spec import parse_spec
        >>> spec = parse_spec({"title": "mine", "dataset": "digits-m", "models": ["zoo:digits-m/resnet"],
        ...                    "attacks": [{"preset": "pgd-linf-8", "name": "pgd-5", "params": {"steps": 5}}]})
        >>> spec.title, spec.tasks[0].name, spec.tasks[0].params["steps"], spec.batch_size
        ('mine', 'pgd-5', 5, 100)
        >>> parse_spec({"dataset": "digits-m", "models": ["zoo:digits-m/resnet"]})
        Traceback (most recent call last):
        ...
        robust.checks.InputError: spec: no attacks and no evaluations; expected at least one of them.
    """
    path = Path(path) if path is not None else None
    check_keys(table, SPEC_KEYS, "spec")
    for key in ("dataset", "models"):
        if key not in table:
            raise InputError(f"spec: the key {key!r} is missing; expected it with {sorted(SPEC_KEYS)}.")
    if not isinstance(table["dataset"], str) or not table["dataset"]:
        raise InputError(f"spec: dataset={table['dataset']!r} is not valid; expected a dataset name.")
    seeds = table.get("seeds", [0])
    try:
        valid = isinstance(seeds, list) and bool(seeds) and len({check_seed(s) for s in seeds}) == len(seeds)
    except ValueError:
        valid = False
    if not valid:
        raise InputError(f"spec: seeds={seeds!r} is not valid; expected a non-empty list of distinct integers in "
                         "[0, 2**64).")
    base = path.parent if path is not None else Path.cwd()
    presets = table.get("presets", [])
    if not isinstance(presets, list) or not all(isinstance(p, str) for p in presets):
        raise InputError(f"spec: presets={presets!r} is not valid; expected a list of folders.")
    dirs = [base / p for p in presets]
    models = _models(table["models"])
    tasks, only = [], {}
    for kind in ("attack", "evaluation"):
        items = table.get(kind + "s", [])
        if not isinstance(items, list):
            raise InputError(f"spec: {kind}s={items!r} is not valid; expected a list of preset names or tables.")
        for item in items:
            item = dict(item) if isinstance(item, dict) else item
            restricted = _restriction(item, kind, models)
            tasks.append(_task(item, kind, dirs))
            if restricted is not None:
                only[tasks[-1].name] = restricted
    if not tasks:
        raise InputError("spec: no attacks and no evaluations; expected at least one of them.")
    names = [t.name for t in tasks]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise InputError(f"spec: {dup[0]!r} is listed twice; expected each attack and evaluation once.")
    _same_twice([(t.name, t.config()) for t in tasks], "task")
    flags = {k: table.get(k, default) for k, default in (("train_missing", True), ("detector", True),
                                                         ("heldout_detector", False))}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise InputError(f"spec: {key}={value!r} is not valid; expected true or false.")
    notes = table.get("notes", {})
    if not isinstance(notes, dict):
        raise InputError(f"spec: notes={notes!r} is not valid; expected a table of task name = text.")
    check_keys(notes, names, "spec [notes]")
    if bad := next((k for k, v in notes.items() if not isinstance(v, str) or not v.strip()), None):
        raise InputError(f"spec [notes]: {bad}={notes[bad]!r} is not valid; expected a non-empty text.")
    device = table.get("device", "auto")
    if not isinstance(device, str):
        raise InputError(f"spec: device={device!r} is not valid; expected auto, cpu, mps or cuda[:n].")
    return Spec(title=str(table.get("title") or (path.stem if path else "leaderboard")), dataset=table["dataset"],
                samples=check_positive_int(table.get("samples", 500), "spec: samples"), seeds=tuple(seeds),
                batch_size=check_positive_int(table.get("batch_size", 100), "spec: batch_size"), device=device,
                models=models, tasks=tuple(tasks), path=path, **flags, samples_given="samples" in table, only=only,
                notes={k: v.strip() for k, v in notes.items()})


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and validate the spec at ``path`` (a TOML file; see ``parse_spec``).

    Args:
        path: the spec file.

    Returns:
        The validated spec, its ``path`` set (the board goes beside it, named after it).

    Raises:
        InputError: a missing file, invalid TOML, or anything ``parse_spec`` refuses.

    Examples:
        >>> from pathlib import Path
        >>> from robust.runner.spec import load_spec
        >>> _ = Path("quick.toml").write_text('''
        ... title = "a quick patch"
        ... dataset = "digits-m"
        ... samples = 8
        ... models = ["zoo:digits-m/resnet"]
        ... attacks = [{ preset = "lavan-12pct", name = "lavan-5", params = { steps = 5 } }]
        ... ''')
        >>> spec = load_spec("quick.toml")
        >>> spec.title, spec.samples, spec.tasks[0].params["steps"], spec.default_out
        ('a quick patch', 8, 5, PosixPath('quick'))
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"spec {str(path)!r} is not a file; expected a leaderboard spec (.toml).")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"spec {str(path)!r} is not valid TOML: {e}") from None
    return parse_spec(table, path)
