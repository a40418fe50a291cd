"""The ``robust`` pytest plugin (entry point ``pytest11``): active wherever robust-suite is installed.

Fixtures: ``robust_model(spec)`` and ``robust_data(name, split)`` (session-cached loaders), ``robust_eval(model,
task, ...)`` (one cell through the runner's store: cached across tests and sessions, trained artifacts reused).
Markers: ``robustness``, ``slow``, ``gpu`` (skipped when no CUDA device is visible). Options:
``--robust-device``, ``--robust-samples``, ``--robust-seed``, ``--robust-store``, ``--robust-report PATH`` (a JSON
record of every robustness assertion), ``--robust-update-baselines`` (``no_regression`` records instead of
comparing), ``--robust-require-baselines`` (a missing baseline fails instead of being recorded).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from robust import testing
from robust.io import atomic_write_text, check_writable

if TYPE_CHECKING:
    from collections.abc import Callable

    from xdist.workermanage import WorkerController

    from robust.data.base import ImageSet
    from robust.data.external import _Labelled
    from robust.models.backbone import Backbone

#: config.stash keys of the plugin's session state
RECORDS = pytest.StashKey[list[dict]]()  # every robustness assertion's record (--robust-report)
CURRENT_TEST = pytest.StashKey[str]()  # the node id of the test being run, which each record names
PREVIOUS_HOOKS = pytest.StashKey[testing.Hooks]()  # robust.testing's hooks before this session's, to restore

MARKERS = {
    "robustness": "a robustness assertion about a model (robust.testing)",
    "slow": "long-running tests, left out of the default run",
    "gpu": "needs a CUDA device; skipped when none is visible",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robust", "robust: robustness suites")
    group.addoption("--robust-device", default="auto", help="device for robust_model / robust_eval (auto, cpu, "
                    "cuda[:n], mps); default auto")
    group.addoption("--robust-samples", type=int, default=None, help="test images per robust_eval (overrides "
                    "the suites' own counts)")
    group.addoption("--robust-seed", type=int, default=0, help="seed of robust_eval's random draws (default 0)")
    group.addoption("--robust-store", default=None, help="directory of the results store robust_eval caches "
                    "cells in (default: robust's cache directory)")
    group.addoption("--robust-report", default=None, metavar="PATH", help="write a JSON record of every "
                    "robustness assertion (value, interval, n, threshold, rule, pass/fail) to PATH")
    group.addoption("--robust-update-baselines", action="store_true", help="no_regression() records the "
                    "measured value as the baseline instead of comparing")
    group.addoption("--robust-require-baselines", action="store_true", help="no_regression() fails on a missing "
                    "baseline (with the command that records it) instead of recording it")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    # timm 1.0.9 (pinned by robustbench) uses torch.jit.interface, which torch >= 2.10 flags on import: not the
    # user's to act on, so their suite's warnings summary does not show it (the robust command does the same)
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.interface` is deprecated:FutureWarning")
    samples = config.getoption("--robust-samples")
    if samples is not None and samples < 1:
        raise pytest.UsageError(f"--robust-samples {samples} is not valid; expected a positive integer.")
    seed = config.getoption("--robust-seed")
    if not 0 <= seed < 2**64:
        raise pytest.UsageError(f"--robust-seed {seed} is not valid; expected an integer in [0, 2**64).")
    report = config.getoption("--robust-report")
    if report:
        try:  # now, not after the whole suite has run
            check_writable(report, "--robust-report")
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
    records: list[dict] = []
    config.stash[RECORDS] = records

    def record(entry: dict) -> None:
        records.append({"test": config.stash.get(CURRENT_TEST, None), **entry})

    hooks = testing.Hooks(record=record, update_baselines=bool(config.getoption("--robust-update-baselines")),
                          require_baselines=bool(config.getoption("--robust-require-baselines")))
    config.stash[PREVIOUS_HOOKS] = testing.set_hooks(hooks)


def pytest_unconfigure(config: pytest.Config) -> None:
    if PREVIOUS_HOOKS in config.stash:  # configured (a usage error stops pytest_configure before)
        testing.set_hooks(config.stash[PREVIOUS_HOOKS])
        del config.stash[PREVIOUS_HOOKS]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device (marked gpu); none is visible")
    item.config.stash[CURRENT_TEST] = item.nodeid


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    records = list(config.stash.get(RECORDS, []))
    if hasattr(config, "workerinput"):  # an xdist worker: hand the records to the controller
        config.workeroutput["robust_records"] = records  # type: ignore[attr-defined]
        return
    path = config.getoption("--robust-report")
    if not path:
        return
    summary = {"assertions": len(records), "passed": sum(r["passed"] for r in records),
               "failed": sum(not r["passed"] for r in records)}
    text = json.dumps({**summary, "records": records}, indent=1) + "\n"
    try:
        atomic_write_text(Path(path), text)
    except OSError as e:  # checked up front, yet the folder changed during the run: keep the report anyway
        import tempfile

        kept = Path(tempfile.gettempdir()) / f"robust-report-{os.getpid()}.json"
        atomic_write_text(kept, text)
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"--robust-report {path!r} could not be written ({e.strerror or e}); the report was kept in {kept}.",
            red=True)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: WorkerController, error: object | None) -> None:
    # xdist controller: gather each worker's records
    records = getattr(node, "workeroutput", {}).get("robust_records")
    if records:
        node.config.stash[RECORDS].extend(records)


@pytest.fixture(scope="session")
def robust_model(request: pytest.FixtureRequest) -> Callable[[str], Backbone]:
    """``robust_model(spec)`` -> a Backbone on ``--robust-device``, loaded once per session."""
    from robust.models import load_model

    device, cache = request.config.getoption("--robust-device"), {}

    def load(spec: str) -> Backbone:
        if spec not in cache:
            cache[spec] = load_model(spec, device=device)
        return cache[spec]

    return load


@pytest.fixture(scope="session")
def robust_data() -> Callable[..., ImageSet | _Labelled]:
    """``robust_data(name="digits-m", split="test")`` -> the dataset, loaded once per session."""
    from robust.data import load_dataset

    cache = {}

    def load(name: str = "digits-m", split: str = "test") -> ImageSet | _Labelled:
        if (name, split) not in cache:
            cache[name, split] = load_dataset(name, split)
        return cache[name, split]

    return load


@pytest.fixture(scope="session")
def robust_eval(request: pytest.FixtureRequest) -> Callable[..., testing.Measured]:
    """``robust_eval(model, task, dataset="digits-m", samples=None, seed=None)`` -> ``robust.testing.Measured``
    (samples: the first N test images; default 500, or all when fewer); ``--robust-samples`` and
    ``--robust-seed`` override the counts and seed."""
    config = request.config

    def run(model: str, task: str | dict, *, dataset: str = "digits-m", samples: int | None = None,
            seed: int | None = None, batch_size: int = 100) -> testing.Measured:
        return testing.measure(model, task, dataset=dataset,
                               samples=config.getoption("--robust-samples") or samples,
                               seed=config.getoption("--robust-seed") if seed is None else seed,
                               batch_size=batch_size, device=config.getoption("--robust-device"),
                               store=config.getoption("--robust-store"))

    return run
