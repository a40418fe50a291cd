"""Robustness assertions for test suites: measure once through the runner's store, assert with a stated rule.

``measure(model, task)`` runs one cell (a model, an attack or evaluation preset, a seed) through the leaderboard
runner, so results and trained artifacts are cached across tests and sessions. The assertions take its result:

- ``assert_tcs_at_most`` / ``assert_asr_at_most`` / ``assert_accuracy_at_least`` (clean or robust accuracy of an
  attack result) / ``assert_auc_at_least`` / ``assert_auc_at_most`` (the normalised area of an evaluation curve);
- ``rule="point"`` compares the point estimate; ``rule="wilson"`` compares the Wilson 95 % bound on the side
  that makes a pass 95 % confident (the upper bound for "at most", the lower for "at least"); for a curve's area
  that bound is its 95 % bootstrap interval over the images (a curve stored without one: the area treated as a
  proportion over its ``n`` images);
- ``no_regression(result, baseline=PATH, tolerance=0.02, key=NAME)`` compares with a recorded baseline (the
  headline: TCS for targeted attacks, ASR for untargeted ones, the area for curves, in the direction the evaluation
  registered), kept under a name for the model so that a new version is compared with the old; it refuses a
  baseline measured on other data, and records a missing one (``--robust-require-baselines``: fails instead);
- ``compare_results(BASELINE, RESULTS)`` (``robust compare``) compares two boards' results.json (or two
  ``attack run --json`` outputs) cell by cell, for CI outside pytest.

Failures are one line: measure, value, interval, n, threshold, rule, and what was measured.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from robust.checks import InputError, InputTypeError, check_choice, check_int, check_number
from robust.compare import Change, compare_results, weak_model
from robust.io import atomic_write_text, cache_dir
from robust.presets import load_preset
from robust.registry import get

if TYPE_CHECKING:  # importing this module (the pytest plugin does, in every session) must not import torch
    import torch

    from robust.evaluations.curve import Curve
    from robust.metrics import Counts

RULES = ("point", "wilson")


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What a test run attaches to the assertions (the pytest plugin sets them for its session with ``set_hooks``).

    Outside a test run the hooks are the defaults: nothing is recorded, baselines are compared (and a missing one
    recorded).

    Attributes:
        record: called with each assertion's record, a dict (for ``--robust-report``); None records nothing.
        update_baselines: ``no_regression`` writes the baseline instead of comparing (``--robust-update-baselines``).
        require_baselines: a missing baseline fails, with the command that records it, instead of being recorded
            (``--robust-require-baselines``, for CI).

    Examples:
        >>> from robust.testing import Hooks
        >>> records = []
        >>> hooks = Hooks(record=records.append, require_baselines=True)
        >>> hooks.update_baselines, hooks.require_baselines
        (False, True)
    """

    record: Callable[[dict], None] | None = None
    update_baselines: bool = False
    require_baselines: bool = False  # a missing baseline fails with the command that records it (CI)


_hooks = Hooks()  # outside a test run: nothing is recorded, baselines are compared


def set_hooks(hooks: Hooks) -> Hooks:
    """Make ``hooks`` the current ones and return the previous ones (to restore with ``set_hooks(previous)``).

    Args:
        hooks: the hooks every assertion uses from now on.

    Returns:
        The hooks that were current before.

    Raises:
        TypeError: ``hooks`` is not a ``Hooks``.

    Examples:
        >>> from robust.testing import Hooks, set_hooks
        >>> previous = set_hooks(Hooks(update_baselines=True))
        >>> set_hooks(previous).update_baselines
        True
    """
    global _hooks
    if not isinstance(hooks, Hooks):
        raise InputTypeError(f"hooks must be a robust.testing.Hooks, got {type(hooks).__name__}.")
    previous, _hooks = _hooks, hooks
    return previous


@dataclasses.dataclass
class Measured:
    """One cell's result, as ``measure`` returns it and the assertions take it.

    Attributes:
        model: the model's spec (an in-memory module's: ``module:pkg.Class@`` and its weights' hash).
        task: the preset's name.
        dataset: the dataset measured.
        samples: the images measured.
        seed: the seed of the draws.
        key: the cell's key in the store.
        counts: an attack's outcome counts (None for an evaluation).
        curve: an evaluation's curve (None for an attack).
        cached: whether it came from the store rather than a run.
        classes: the model's class count (chance accuracy is 1 / classes).
        weights: the sha256 of the model's parameters and buffers.

    Examples:
        >>> from robust.metrics import Counts
        >>> from robust.testing import Measured
        >>> result = Measured("zoo:digits-m/resnet", "lavan-12pct", "digits-m", 500, 0, "key", classes=10,
        ...                   counts=Counts(n=500, clean_correct=480, success=300, target_hit=200, targeted=True))
        >>> round(result.counts.tcs, 3)
        0.417
    """

    model: str
    task: str
    dataset: str
    samples: int
    seed: int
    key: str
    counts: Counts | None = None
    curve: Curve | None = None
    cached: bool = False
    classes: int | None = None  # the model's class count (an attack result's; chance accuracy is 1 / classes)
    weights: str | None = None  # sha256 of the model's parameters and buffers (robust.runner.keys.fingerprint_model)

    def describe(self) -> str:
        return f"{self.task} on {self.model} ({self.dataset}, n={self.samples}, seed {self.seed})"


def measure(model: str | torch.nn.Module, task: str | dict, *, dataset: str = "digits-m", samples: int | None = None,
            seed: int = 0, batch_size: int = 100, device: str = "auto",
            store: str | os.PathLike | None = None) -> Measured:
    """Run one cell, or fetch it from the store: ``task`` against ``model`` on the first test images of ``dataset``.

    The cell runs through the leaderboard runner, so results (and trained artifacts) are cached across tests and
    sessions by a key of the model's weights, the data, the task and the seed.

    Args:
        model: a load spec (``zoo:digits-m/resnet``...), or a module: a ``Backbone``, or a plain ``nn.Module``,
            which takes the data's image size; a module runs on its own device, cached by its weights' hash.
        task: an attack or evaluation preset's name (``lavan-12pct``, ``patch-drop``...), or an inline preset
            table: ``{"name": ..., "attack": METHOD, "params": {...}}`` (``"evaluation"`` for a curve).
        dataset: the dataset (``load_dataset``'s names); its test split is measured.
        samples: the first ``samples`` test images (default: 500, or all when fewer).
        seed: the seed of every per-image draw.
        batch_size: images per batch.
        device: ``auto``, ``cpu``, ``cuda``...; a module's own device wins.
        store: the folder of ``results.sqlite`` (default: robust's cache).

    Returns:
        The result, for the assertions: ``counts`` for an attack, ``curve`` for an evaluation.

    Raises:
        InputError: a model, task or dataset that cannot be used, in one line.

    Examples:
        >>> from robust.testing import measure
        >>> quick = {"name": "lavan-5", "attack": "lavan", "params": {"area": 0.12, "steps": 5}}
        >>> result = measure("zoo:digits-m/resnet", quick, samples=20, store="store")
        >>> result.counts.n, result.cached, measure("zoo:digits-m/resnet", quick, samples=20, store="store").cached
        (20, False, True)
    """
    import torch

    from robust.evaluations.curve import Curve
    from robust.metrics import Counts
    from robust.runner import STORE_NAME, Store, parse_spec, plan, run_cells
    from robust.runner.cache import module_spec
    from robust.runner.executors import local_devices

    module = model if isinstance(model, torch.nn.Module) else None  # held here: the cells see it only weakly
    if module is not None:  # evaluated where it is, as it is; cached by its weights
        device = str(next((p.device for p in module.parameters()), torch.device("cpu")))
        model = module_spec(module)
    elif not isinstance(model, str) or not model:
        raise InputError(f"model={model!r} is not valid; expected a load spec such as 'zoo:digits-m/resnet' or a "
                         "torch.nn.Module.")
    kind = "evaluations" if _is_evaluation(task) else "attacks"
    spec = parse_spec({"dataset": dataset, "seeds": [seed], "batch_size": batch_size, "device": device,
                       "models": [model], kind: [task], **({} if samples is None else {"samples": samples})})
    out = Path(store) if store is not None else cache_dir("pytest")
    cells, unloadable = plan(spec, local_devices(device)[0])
    if unloadable:
        raise InputError(unloadable[0]["error"])
    cell = cells[0]
    cached = False
    if (out / STORE_NAME).exists():
        with Store(out / STORE_NAME) as existing:
            cached = cell.key in existing.done()
    if not cached:
        run_cells(cells, [], out, device=device)
    with Store(out / STORE_NAME) as st:
        row = st.rows({cell.key})[0]
    if row["status"] != "done":
        raise RuntimeError(f"{cell.task.name} on {model} failed: {row['error']}")
    result = row["result"]
    common = {"model": model, "task": cell.task.name, "dataset": dataset, "samples": cell.samples, "seed": seed,
              "key": cell.key, "cached": cached, "weights": cell.weights}
    if cell.task.kind == "attack":
        fields = {f.name for f in dataclasses.fields(Counts)}
        return Measured(**common, counts=Counts(**{k: v for k, v in result.items() if k in fields}),
                        classes=(result.get("per_image") or {}).get("classes"))
    curve_fields = {f.name for f in dataclasses.fields(Curve)} - {"higher_is_better"}
    direction = get(cell.task.method, "evaluation").higher_is_better  # the registry's, also for older rows
    return Measured(**common, curve=Curve(**{k: v for k, v in result.items() if k in curve_fields},
                                          higher_is_better=direction))


def _is_evaluation(task: str | dict) -> bool:
    if isinstance(task, dict):
        return "evaluation" in task or ("preset" in task and load_preset(task["preset"]).kind == "evaluation")
    if not isinstance(task, str):
        raise InputError(f"task={task!r} is not valid; expected a preset name or a preset table.")
    return load_preset(task).kind == "evaluation"


def _check(result: Measured, threshold: float, rule: str, need: str) -> None:
    __tracebackhide__ = True  # a failing gate shows the test's line, not robust's internals
    if not isinstance(result, Measured):
        raise InputTypeError(f"result must come from robust.testing.measure (or the robust_eval fixture), got "
                             f"{type(result).__name__}.")
    if need == "counts" and result.counts is None:
        raise InputError(f"{result.task} is an evaluation (a curve); expected an attack result here.")
    if need == "curve" and result.curve is None:
        raise InputError(f"{result.task} is an attack; expected an evaluation (curve) result here.")
    check_number(threshold, "threshold", low=0, high=1)
    check_choice(rule, RULES, "rule")


def _decide(result: Measured, measure_name: str, value: float | None, interval: tuple[float, float] | None, n: int,
            threshold: float, rule: str, at_most: bool, bound_name: str = "Wilson") -> None:
    """Compare, record, and fail with one line (``bound_name``: what the interval is)."""
    __tracebackhide__ = True
    if value is None:
        raise InputError(f"{measure_name} is undefined for {result.describe()} (no correctly classified images, or "
                         "an untargeted attack for TCS).")
    decisive = value if rule == "point" else interval[1] if at_most else interval[0]
    passed = decisive <= threshold if at_most else decisive >= threshold
    record = {"assertion": f"{measure_name} {'at most' if at_most else 'at least'}", "measure": measure_name,
              "value": value, "interval": list(interval) if interval else None, "n": n, "threshold": threshold,
              "rule": rule, "passed": passed, "model": result.model, "task": result.task, "dataset": result.dataset,
              "samples": result.samples, "seed": result.seed}
    if _hooks.record is not None:
        _hooks.record(record)
    if not passed:
        ci = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        bound = "" if rule == "point" else f" ({'upper' if at_most else 'lower'} {bound_name} bound {decisive:.3f})"
        raise AssertionError(f"{measure_name} {value:.3f}{ci} (n={n}) {'>' if at_most else '<'} {round(threshold, 6)} "
                             f"under rule {rule}{bound}: {result.describe()}")


def _guard(result: Measured, label: str, min_correct: int, allow_chance: bool) -> None:
    """Fail a gate on an attack result that would pass it for the wrong reason: fewer than ``min_correct``
    clean-correct images, or (unless ``allow_chance``) clean accuracy whose Wilson lower bound is at most chance."""
    __tracebackhide__ = True
    check_int(min_correct, "min_correct", low=0, expected="a non-negative integer")
    if not isinstance(allow_chance, bool):
        raise InputError(f"allow_chance={allow_chance!r} is not valid; expected True or False.")
    counts = result.counts
    why = weak_model(counts.clean_correct, counts.n, result.classes, min_correct, allow_chance)
    if why is not None:
        raise AssertionError(f"the {label} gate on this model would pass for the wrong reason: {why} "
                             f"({result.describe()}); fix the model or the data, or pass "
                             f"{'min_correct=0' if 'min_correct' in why else 'allow_chance=True'} to gate anyway.")


def _rate(result: Measured, rate: str, threshold: float, rule: str, at_most: bool, label: str,
          min_correct: int = 0, allow_chance: bool = True) -> None:
    __tracebackhide__ = True  # a failing gate shows the test's line, not robust's internals
    _check(result, threshold, rule, "counts")
    _guard(result, label, min_correct, allow_chance)
    _, n = result.counts.fraction(rate)
    _decide(result, label, result.counts.rate(rate), result.counts.interval(rate), n, threshold, rule, at_most)


def assert_tcs_at_most(result: Measured, threshold: float, *, rule: str = "point", min_correct: int = 30,
                       allow_chance: bool = False) -> None:
    """Assert that the target-class success rate (over the clean-correct images) is at most ``threshold``.

    A model with fewer than ``min_correct`` clean-correct images, or whose clean accuracy is not above chance (its
    Wilson lower bound at most 1 / classes), fails too: an untrained model would otherwise pass.

    Args:
        result: an attack's result (``measure``).
        threshold: the highest TCS that passes, in [0, 1].
        rule: ``point`` compares the point estimate; ``wilson`` its Wilson 95 % bound on the side that makes a
            pass 95 % confident (here the upper bound).
        min_correct: the fewest clean-correct images a pass needs.
        allow_chance: let a model whose clean accuracy is not above chance pass.

    Raises:
        AssertionError: one line: the measure, value, interval, n, threshold, rule and what was measured.

    Examples:
        >>> from robust.metrics import Counts
        >>> from robust.testing import Measured, assert_tcs_at_most
        >>> result = Measured("zoo:digits-m/resnet", "lavan-12pct", "digits-m", 500, 0, "key", classes=10,
        ...                   counts=Counts(n=500, clean_correct=480, success=300, target_hit=200, targeted=True))
        >>> assert_tcs_at_most(result, 0.45)
        >>> assert_tcs_at_most(result, 0.45, rule="wilson")
        Traceback (most recent call last):
        AssertionError: TCS 0.417 [0.373, 0.461] (n=480) > 0.45 under rule wilson (upper Wilson bound 0.461): ...
    """
    __tracebackhide__ = True
    _rate(result, "tcs", threshold, rule, True, "TCS", min_correct, allow_chance)


def assert_asr_at_most(result: Measured, threshold: float, *, rule: str = "point", min_correct: int = 30,
                       allow_chance: bool = False) -> None:
    """Assert that the attack success rate (over the clean-correct images) is at most ``threshold``.

    A model too weak to judge fails, as in ``assert_tcs_at_most``.

    Args:
        result: an attack's result (``measure``).
        threshold: the highest ASR that passes, in [0, 1].
        rule: ``point`` compares the point estimate; ``wilson`` its Wilson 95 % bound on the side that makes a
            pass 95 % confident (here the upper bound).
        min_correct: the fewest clean-correct images a pass needs.
        allow_chance: let a model whose clean accuracy is not above chance pass.

    Raises:
        AssertionError: one line: the measure, value, interval, n, threshold, rule and what was measured.

    Examples:
        >>> from robust.metrics import Counts
        >>> from robust.testing import Measured, assert_asr_at_most
        >>> result = Measured("zoo:digits-m/resnet", "lavan-12pct", "digits-m", 500, 0, "key", classes=10,
        ...                   counts=Counts(n=500, clean_correct=480, success=300, target_hit=200, targeted=True))
        >>> assert_asr_at_most(result, 0.6)
        Traceback (most recent call last):
        AssertionError: ASR 0.625 [0.581, 0.667] (n=480) > 0.6 under rule point: lavan-12pct on zoo:digits-m/resnet ...
    """
    __tracebackhide__ = True
    _rate(result, "asr", threshold, rule, True, "ASR", min_correct, allow_chance)


def assert_accuracy_at_least(result: Measured, threshold: float, *, rule: str = "point",
                             which: str = "clean") -> None:
    """Assert that the clean accuracy, or the robust accuracy under the attack, is at least ``threshold``.

    Args:
        result: an attack's result (``measure``).
        threshold: the lowest accuracy that passes, in [0, 1].
        rule: ``point`` compares the point estimate; ``wilson`` its Wilson 95 % lower bound.
        which: ``clean`` (without the attack) or ``robust`` (under it).

    Raises:
        AssertionError: one line: the measure, value, interval, n, threshold, rule and what was measured.

    Examples:
        >>> from robust.metrics import Counts
        >>> from robust.testing import Measured, assert_accuracy_at_least
        >>> result = Measured("zoo:digits-m/resnet", "lavan-12pct", "digits-m", 500, 0, "key", classes=10,
        ...                   counts=Counts(n=500, clean_correct=480, success=300, target_hit=200, targeted=True))
        >>> assert_accuracy_at_least(result, 0.95)
        >>> assert_accuracy_at_least(result, 0.95, rule="wilson")
        Traceback (most recent call last):
        AssertionError: clean accuracy 0.960 [0.939, 0.974] (n=500) < 0.95 under rule wilson ...
    """
    if which not in ("clean", "robust"):
        raise InputError(f"which={which!r} is not valid; expected 'clean' or 'robust'.")
    __tracebackhide__ = True
    _rate(result, f"{which}_accuracy", threshold, rule, False, f"{which} accuracy")


def _area(result: Measured, threshold: float, rule: str, at_most: bool) -> None:
    __tracebackhide__ = True
    from robust.metrics import wilson_interval

    _check(result, threshold, rule, "curve")
    area, n = result.curve.area, result.curve.n
    boot = result.curve.area_interval
    interval = boot or wilson_interval(round(area * n), n)
    _decide(result, f"{result.curve.name} area", area, interval, n, threshold, rule, at_most,
            "bootstrap" if boot else "Wilson")


def assert_auc_at_least(result: Measured, threshold: float, *, rule: str = "point") -> None:
    """Assert that the normalised area under an evaluation's curve is at least ``threshold``.

    For curves where higher is better, such as accuracy under patch drop.

    Args:
        result: an evaluation's result (``measure``).
        threshold: the lowest area that passes, in [0, 1].
        rule: ``point`` compares the area; ``wilson`` the low end of its 95 % bootstrap interval over images
            (a curve stored without one: the area's Wilson bound as a proportion over its n images).

    Raises:
        AssertionError: one line: the measure, value, interval, n, threshold, rule and what was measured.

    Examples:
        >>> from robust.evaluations.curve import Curve
        >>> from robust.testing import Measured, assert_auc_at_least
        >>> curve = Curve("patch-drop", [0.0, 0.5, 1.0], [0.9, 0.5, 0.1], [0.0, 0.02, 0.01], 500, 3, "share dropped",
        ...               "accuracy", area_interval=[0.46, 0.54])
        >>> result = Measured("zoo:digits-m/resnet", "patch-drop", "digits-m", 500, 0, "key", curve=curve)
        >>> assert_auc_at_least(result, 0.45, rule="wilson")
    """
    _area(result, threshold, rule, False)


def assert_auc_at_most(result: Measured, threshold: float, *, rule: str = "point") -> None:
    """Assert that the normalised area under an evaluation's curve is at most ``threshold``.

    For curves where lower is better, such as the selectivity share.

    Args:
        result: an evaluation's result (``measure``).
        threshold: the highest area that passes, in [0, 1].
        rule: ``point`` compares the area; ``wilson`` the high end of its 95 % bootstrap interval over images.

    Raises:
        AssertionError: one line: the measure, value, interval, n, threshold, rule and what was measured.

    Examples:
        >>> from robust.evaluations.curve import Curve
        >>> from robust.testing import Measured, assert_auc_at_most
        >>> curve = Curve("patch-drop", [0.0, 0.5, 1.0], [0.9, 0.5, 0.1], [0.0, 0.02, 0.01], 500, 3, "share dropped",
        ...               "accuracy", area_interval=[0.46, 0.54])
        >>> result = Measured("zoo:digits-m/resnet", "patch-drop", "digits-m", 500, 0, "key", curve=curve)
        >>> assert_auc_at_most(result, 0.45)
        Traceback (most recent call last):
        AssertionError: patch-drop area 0.500 [0.460, 0.540] (n=500) > 0.45 under rule point: ...
    """
    __tracebackhide__ = True
    _area(result, threshold, rule, True)


def model_key(model: str) -> str:
    """The name a baseline is kept under when the test gives none.

    A spec as it is; an in-memory module's spec without its weights' hash (``module:pkg.Net@3f2a...`` ->
    ``module:pkg.Net``), so that a new version of the same model is compared with the old one rather than refused.

    Args:
        model: the model's spec (``Measured.model``).

    Returns:
        The baseline key.

    Examples:
        >>> from robust.testing import model_key
        >>> model_key("module:mylab.nets.Net@3f2a9c"), model_key("zoo:digits-m/resnet")
        ('module:mylab.nets.Net', 'zoo:digits-m/resnet')
    """
    return model.rpartition("@")[0] if model.startswith("module:") and "@" in model else model


def no_regression(result: Measured, *, baseline: str | os.PathLike, tolerance: float = 0.02, key: str | None = None,
                  min_correct: int = 30, allow_chance: bool = False) -> None:
    """Assert that ``result`` is no worse than the recorded ``baseline`` by more than ``tolerance``.

    The gate between two versions of a model. The headline is compared: TCS for a targeted attack, ASR for an
    untargeted one, the area for a curve, in the direction its evaluation registered. The baseline is kept under
    ``key``, so that ``v2`` of a model is compared with ``v1``; each one's weights' sha256 and spec are recorded and
    named in a failure. A baseline measured on another task, dataset, sample count, seed or measure is refused. A
    missing baseline is recorded and the call passes with a ``BaselineRecorded`` warning (commit the file), unless
    pytest runs with ``--robust-require-baselines``: then it fails with the command that records it;
    ``--robust-update-baselines`` records (replaces) it.

    Args:
        result: a result (``measure``).
        baseline: the JSON file of the baseline.
        tolerance: how much worse than the baseline still passes, in [0, 1].
        key: the name the model's baseline is kept under (default: its spec; an in-memory module's class, not its
            weights' hash).
        min_correct: as ``assert_tcs_at_most``: an attack result with fewer clean-correct images fails.
        allow_chance: as ``assert_tcs_at_most``: let a model at chance pass.

    Raises:
        AssertionError: one line naming both values and versions.
        InputError: a baseline recorded for something else, or not a baseline.

    Examples:
        >>> import warnings
        >>> from robust.metrics import Counts
        >>> from robust.testing import BaselineRecorded, Measured, no_regression
        >>> def version(tcs_hits):
        ...     counts = Counts(n=500, clean_correct=480, success=300, target_hit=tcs_hits, targeted=True)
        ...     return Measured("zoo:digits-m/resnet", "lavan-12pct", "digits-m", 500, 0, "key", counts, classes=10)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     no_regression(version(200), baseline="baseline.json", key="mynet")  # none yet: recorded
        >>> caught[0].category is BaselineRecorded
        True
        >>> no_regression(version(205), baseline="baseline.json", key="mynet")  # TCS 0.427 <= 0.417 + 0.02
        >>> no_regression(version(230), baseline="baseline.json", key="mynet")
        Traceback (most recent call last):
        AssertionError: tcs vs baseline 0.417 (mynet) 0.479 (n=480) > ... under rule point: lavan-12pct on ...
    """
    __tracebackhide__ = True
    check_number(tolerance, "tolerance", low=0, high=1)
    if not isinstance(result, Measured):
        raise InputTypeError(f"result must come from robust.testing.measure, got {type(result).__name__}.")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise InputError(f"key={key!r} is not valid; expected a non-empty name for the model, e.g. 'mycnn'.")
    path = Path(baseline)
    if result.counts is not None:  # the measure a baseline tracks: the headline rate, or a curve's area
        name = result.counts.headline
        value, n, lower_better = result.counts.rate(name), result.counts.fraction(name)[1], True
        _guard(result, f"{name.upper()} no-regression", min_correct, allow_chance)
    else:
        name, value, n, lower_better = "area", result.curve.area, result.curve.n, not result.curve.higher_is_better
    if value is None:
        raise InputError(f"{name} is undefined for {result.describe()}; nothing to record or compare.")
    ident = {"key": key or model_key(result.model), "task": result.task, "dataset": result.dataset,
             "samples": result.samples, "seed": result.seed, "measure": name}
    entry = {**ident, "value": value, "n": n, "model": result.model, "weights": result.weights, "cell": result.key}
    if _hooks.update_baselines or (not path.exists() and not _hooks.require_baselines):
        first = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(entry, indent=1) + "\n")
        if first and not _hooks.update_baselines:
            warnings.warn(f"baseline {str(path)!r} did not exist: recorded {name} {value:.3f} (n={n}) for "
                          f"{ident['key']!r} as the baseline; commit it so that later runs compare with it.",
                          BaselineRecorded, stacklevel=2)
        if _hooks.record is not None:
            _hooks.record({"assertion": "no regression (baseline recorded)", "measure": name, "value": value,
                           "interval": None, "n": n, "threshold": None, "rule": "point", "passed": True,
                           "model": result.model, "task": result.task, "dataset": result.dataset,
                           "samples": result.samples, "seed": result.seed, "baseline": str(path)})
        return
    if not path.is_file():
        current = os.environ.get("PYTEST_CURRENT_TEST", "")
        test = current.rpartition(" (")[0] or current
        raise AssertionError(f"baseline {str(path)!r} does not exist and --robust-require-baselines is set; record "
                             f"it with `pytest --robust-update-baselines {test or 'TEST'}` and commit it.")
    try:
        base = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"baseline {str(path)!r} is not valid JSON ({e}); record it again.") from None
    if not isinstance(base, dict):
        raise InputError(f"baseline {str(path)!r} holds a JSON {type(base).__name__}; expected the object that "
                         "--robust-update-baselines records (record it again).")
    recorded = base.get("value")
    if isinstance(recorded, bool) or not isinstance(recorded, (int, float)) or not math.isfinite(recorded):
        raise InputError(f"baseline {str(path)!r} has value={recorded!r}; expected a finite number (record it again "
                         "with --robust-update-baselines).")
    if "key" not in base:  # recorded before keys: it named the model by its spec
        base = {**base, "key": model_key(str(base.get("model")))}
    for k, mine in ident.items():
        if base.get(k) != mine:
            hint = " (pass key= to name the model yourself)" if k == "key" else ""
            raise InputError(f"baseline {str(path)!r} was recorded with {k}={base.get(k)!r}, this run has "
                             f"{k}={mine!r}; refusing to compare{hint} (record it again with "
                             "--robust-update-baselines).")
    limit = min(max(base["value"] + tolerance if lower_better else base["value"] - tolerance, 0.0), 1.0)
    versions = "" if base.get("weights") in (None, result.weights) else \
        f", weights {str(base['weights'])[:12]} -> {str(result.weights)[:12]}"
    _decide(result, f"{name} vs baseline {base['value']:.3f} ({ident['key']}{versions})", value, None, n, limit,
            "point", lower_better)


class BaselineRecorded(UserWarning):
    """The warning ``no_regression`` gives when it finds no baseline and records this run's value as it.

    Commit the file it names, so that later runs compare with it; ``-W error::robust.testing.BaselineRecorded``
    (or ``--robust-require-baselines``) makes a missing baseline fail instead.

    Examples:
        >>> import warnings
        >>> from robust.metrics import Counts
        >>> from robust.testing import BaselineRecorded, Measured, no_regression
        >>> result = Measured("zoo:digits-m/resnet", "lavan-12pct", "digits-m", 500, 0, "key", classes=10,
        ...                   counts=Counts(n=500, clean_correct=480, success=300, target_hit=200, targeted=True))
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     no_regression(result, baseline="new.json", key="mynet")
        >>> print(caught[0].message)
        baseline 'new.json' did not exist: recorded tcs 0.417 (n=480) for 'mynet' as the baseline; commit it so
        that later runs compare with it.
    """


__all__ = ["RULES", "BaselineRecorded", "Change", "Hooks", "Measured", "assert_accuracy_at_least", "assert_asr_at_most",
           "assert_auc_at_least", "assert_auc_at_most", "assert_tcs_at_most", "compare_results", "measure",
           "model_key", "no_regression", "set_hooks"]
