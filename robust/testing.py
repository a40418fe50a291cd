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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from robust.checks import InputError, check_choice, check_int, check_number
from robust.compare import Change, compare_results
from robust.io import atomic_write_text, cache_dir

if TYPE_CHECKING:  # importing this module (the pytest plugin does, in every session) must not import torch
    import torch

    from robust.evaluations.curve import Curve
    from robust.metrics import Counts

RULES = ("point", "wilson")


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What a test run attaches to the assertions (the pytest plugin, for its session): ``record`` is called with
    each assertion's record (for ``--robust-report``); ``update_baselines`` makes ``no_regression`` write the
    baseline instead of comparing (``--robust-update-baselines``); ``require_baselines`` makes a missing baseline
    fail instead of being recorded (``--robust-require-baselines``)."""

    record: Callable[[dict], None] | None = None
    update_baselines: bool = False
    require_baselines: bool = False  # a missing baseline fails with the command that records it (CI)


_hooks = Hooks()  # outside a test run: nothing is recorded, baselines are compared


def set_hooks(hooks: Hooks) -> Hooks:
    """Make ``hooks`` the current ones and return the previous ones (to restore with ``set_hooks(previous)``)."""
    global _hooks
    if not isinstance(hooks, Hooks):
        raise TypeError(f"hooks must be a robust.testing.Hooks, got {type(hooks).__name__}.")
    previous, _hooks = _hooks, hooks
    return previous


@dataclasses.dataclass
class Measured:
    """One cell's result: ``counts`` for an attack, ``curve`` for an evaluation."""

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
    """Run (or fetch from the store) ``task`` (a preset name or an inline preset table with ``name``) against
    ``model`` (a load spec, or a module: a ``Backbone``, or a plain ``nn.Module``, which takes the data's image size;
    a module runs on its own device) on the first ``samples`` test images (default: 500, or all when fewer).
    ``store``: a directory for ``results.sqlite`` (default: robust's cache)."""
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
    from robust.registry import get

    curve_fields = {f.name for f in dataclasses.fields(Curve)} - {"higher_is_better"}
    direction = get(cell.task.method, "evaluation").higher_is_better  # the registry's, also for older rows
    return Measured(**common, curve=Curve(**{k: v for k, v in result.items() if k in curve_fields},
                                          higher_is_better=direction))


def _is_evaluation(task: str | dict) -> bool:
    from robust.presets import load_preset

    if isinstance(task, dict):
        return "evaluation" in task or ("preset" in task and load_preset(task["preset"]).kind == "evaluation")
    if not isinstance(task, str):
        raise InputError(f"task={task!r} is not valid; expected a preset name or a preset table.")
    return load_preset(task).kind == "evaluation"


def _check(result: Measured, threshold: float, rule: str, need: str) -> None:
    __tracebackhide__ = True  # a failing gate shows the test's line, not robust's internals
    if not isinstance(result, Measured):
        raise TypeError(f"result must come from robust.testing.measure (or the robust_eval fixture), got "
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
        raise AssertionError(f"{measure_name} {value:.3f}{ci} (n={n}) {'>' if at_most else '<'} {threshold} "
                             f"under rule {rule}{bound}: {result.describe()}")


def _guard(result: Measured, label: str, min_correct: int, allow_chance: bool) -> None:
    """Fail a gate on an attack result that would pass it for the wrong reason: fewer than ``min_correct``
    clean-correct images, or (unless ``allow_chance``) clean accuracy whose Wilson lower bound is at most chance."""
    __tracebackhide__ = True
    from robust.compare import weak_model

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
    """Target-class success (over the clean-correct images) at most ``threshold``. A model with fewer than
    ``min_correct`` clean-correct images, or whose clean accuracy is not above chance (its Wilson lower bound at
    most 1 / classes), fails the gate: an untrained model would otherwise pass it."""
    __tracebackhide__ = True
    _rate(result, "tcs", threshold, rule, True, "TCS", min_correct, allow_chance)


def assert_asr_at_most(result: Measured, threshold: float, *, rule: str = "point", min_correct: int = 30,
                       allow_chance: bool = False) -> None:
    """Attack success rate (over the clean-correct images) at most ``threshold``; a weak model fails as in
    ``assert_tcs_at_most``."""
    __tracebackhide__ = True
    _rate(result, "asr", threshold, rule, True, "ASR", min_correct, allow_chance)


def assert_accuracy_at_least(result: Measured, threshold: float, *, rule: str = "point",
                             which: str = "clean") -> None:
    """Clean (``which='clean'``) or robust (``'robust'``: under the attack) accuracy at least ``threshold``."""
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
    """The normalised area under an evaluation's curve at least ``threshold`` (for curves where higher is
    better, such as accuracy under patch drop)."""
    _area(result, threshold, rule, False)


def assert_auc_at_most(result: Measured, threshold: float, *, rule: str = "point") -> None:
    """The normalised area under an evaluation's curve at most ``threshold`` (for curves where lower is better,
    such as the selectivity share)."""
    __tracebackhide__ = True
    _area(result, threshold, rule, True)


def _headline(result: Measured) -> tuple[str, float | None, bool]:
    """(measure, value, lower is better) that a baseline tracks."""
    if result.counts is not None:
        return result.counts.headline, result.counts.rate(result.counts.headline), True
    return "area", result.curve.area, not result.curve.higher_is_better


def model_key(model: str) -> str:
    """The name a baseline is kept under when the test gives none: a spec as it is, an in-memory module's spec
    without its weights' hash (``module:pkg.Net@3f2a...`` -> ``module:pkg.Net``), so that a new version of the
    same model is compared with the old one rather than refused."""
    return model.rpartition("@")[0] if model.startswith("module:") and "@" in model else model


def no_regression(result: Measured, *, baseline: str | os.PathLike, tolerance: float = 0.02, key: str | None = None,
                  min_correct: int = 30, allow_chance: bool = False) -> None:
    """No worse than the recorded ``baseline`` by more than ``tolerance``: the gate between two versions of a model.

    The baseline is kept under ``key``, a name you choose for the model (default: its spec; an in-memory module's
    class, not its weights' hash), so that ``v2`` of a model is compared with ``v1``; the weights' sha256 and spec
    of each are recorded beside it and named in a failure. A baseline measured on another task, dataset, sample
    count, seed or measure is refused. An attack result also fails when it would pass for the wrong reason (fewer
    than ``min_correct`` clean-correct images, clean accuracy not above chance), as ``assert_tcs_at_most`` does.
    A missing baseline is recorded and the test passes with a warning saying so (commit the file), unless pytest
    runs with ``--robust-require-baselines``: then it fails with the command that records it.
    ``--robust-update-baselines`` records (replaces) it.

    >>> no_regression(robust_eval(net, "gan-patch-12pct"), baseline="baselines/mine.json", key="mine")  # doctest: +SKIP
    """
    __tracebackhide__ = True
    check_number(tolerance, "tolerance", low=0, high=1)
    if not isinstance(result, Measured):
        raise TypeError(f"result must come from robust.testing.measure, got {type(result).__name__}.")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise InputError(f"key={key!r} is not valid; expected a non-empty name for the model, e.g. 'mycnn'.")
    path = Path(baseline)
    name, value, lower_better = _headline(result)
    if result.counts is not None:
        _guard(result, f"{name.upper()} no-regression", min_correct, allow_chance)
    if value is None:
        raise InputError(f"{name} is undefined for {result.describe()}; nothing to record or compare.")
    ident = {"key": key or model_key(result.model), "task": result.task, "dataset": result.dataset,
             "samples": result.samples, "seed": result.seed, "measure": name}
    n = result.counts.fraction(name)[1] if result.counts is not None else result.curve.n
    entry = {**ident, "value": value, "n": n, "model": result.model, "weights": result.weights, "cell": result.key}
    if _hooks.update_baselines or (not path.exists() and not _hooks.require_baselines):
        first = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(entry, indent=1) + "\n")
        if first and not _hooks.update_baselines:
            import warnings

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
    """``no_regression`` found no baseline and recorded this run's value as it (commit the file)."""


__all__ = ["RULES", "BaselineRecorded", "Change", "Hooks", "Measured", "assert_accuracy_at_least", "assert_asr_at_most",
           "assert_auc_at_least", "assert_auc_at_most", "assert_tcs_at_most", "compare_results", "measure",
           "model_key", "no_regression", "set_hooks"]
