"""The leaderboard runner: a spec expands into cells (model x task x seed), each keyed by the hash of its
configuration, the model's weights and the evaluated images; finished cells are stored in SQLite and skipped
when the run is repeated or resumed after an interruption.

``run_board(spec, out)`` runs what is missing, records the plan under ``plan_id(spec)`` and returns a
``RunReport``; ``robust.leaderboard`` renders the store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from robust.checks import InputError
from robust.io import digest
from robust.runner.keys import CELL_VERSION
from robust.runner.spec import Spec, load_spec, parse_spec
from robust.runner.store import STALE_SECONDS, Heartbeat, Store, new_owner

if TYPE_CHECKING:
    from robust.runner.cells import Cell

STORE_NAME = "results.sqlite"
MARKER = ".robust-board"  # makes a folder a board: the only kind of folder robust writes a board into
BOARD_FORMAT = "robust-board/1"


@dataclasses.dataclass
class RunReport:
    """What ``run_board`` (or ``run_cells``) did: the spec's cells, how many it skipped, ran and saw fail, and its
    seconds.

    Attributes:
        cells: the cells of the spec (the plan's runnable cells and its failed rows).
        skipped: cells already in the store, or finished meanwhile by another run on the same store.
        ran: cells this run computed (failed ones included).
        failed: failed cells: the plan's (model did not load, missing artifact, ...) and those that failed running.
        wall: seconds of running the cells (planning, which loads and hashes models and images, excluded).
        work: seconds inside the attacks and evaluations of the cells that ran (training included).
        cell_wall: seconds from a cell's dispatch to its row being committed, summed (local executor).
        out: the board folder.

    Examples:
        >>> from pathlib import Path
        >>> from robust.runner import RunReport
        >>> report = RunReport(cells=4, skipped=3, ran=1, failed=0, wall=2.5, work=2.0, cell_wall=2.4, out=Path("demo"))
        >>> report.to_dict()["out"], report.skipped + report.ran == report.cells
        ('demo', True)
    """

    cells: int  # in the spec
    skipped: int  # already in the store, or finished meanwhile by another run on the same store
    ran: int
    failed: int
    wall: float  # seconds of running the cells (planning, which loads and hashes models and images, excluded)
    work: float  # seconds inside the attacks and evaluations of the cells that ran
    cell_wall: float  # seconds from a cell's dispatch to its row being committed, summed (local executor)
    out: Path

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "out": str(self.out)}


WAITING = "waiting for"  # how a progress line about cells another run holds begins (shown even under --json)


def plan(spec: Spec, device: str = "cpu") -> tuple[list[Cell], list[dict]]:
    """The spec's cells, and a failed row for each cell that cannot run.

    A cell cannot run when its model does not load or does not fit the data, its artifact fails its check, or it
    needs a trained artifact that does not exist while the spec sets ``train_missing = false``. Each cell's key hashes
    its configuration, the model's weights, the evaluated images (the whole split for a method that draws donors from
    it) and its artifact. Models are loaded on ``device`` once and kept for the cells run in this process (the models
    an earlier plan kept are forgotten first). Nothing is run or stored.

    Args:
        spec: the spec.
        device: where the models are loaded (and hashed).

    Returns:
        ``(cells, failed)``: the runnable cells, in spec order (model, task, seed), and the failed rows (dicts with
        ``key``, ``model``, ``task``, ``kind``, ``seed``, ``status``, ``config`` and ``error``).

    Raises:
        InputError: ``samples`` set to more than the test split holds, or a dataset that does not load.

    Examples:
        >>> from pathlib import Path
        >>> from robust.runner import load_spec, plan
        >>> _ = Path("quick.toml").write_text('''
        ... dataset = "digits-m"
        ... samples = 8
        ... models = ["zoo:digits-m/resnet"]
        ... attacks = [{ preset = "lavan-12pct", name = "lavan-5", params = { steps = 5 } }]
        ... ''')
        >>> cells, failed = plan(load_spec("quick.toml"))
        >>> [(c.model, c.task.name, c.samples, c.seed) for c in cells], failed
        ([('zoo:digits-m/resnet', 'lavan-5', 8, 0)], [])
    """
    from robust import registry
    from robust.attacks.artifacts import artifact_for, artifact_victim
    from robust.checks import check_matches, data_image_size
    from robust.runner import cache
    from robust.runner.cells import Cell
    from robust.runner.keys import fingerprint_data

    cache.forget_models()
    data = cache.load_dataset_cached(spec.dataset)
    samples = min(spec.samples, len(data))
    if spec.samples_given and spec.samples > len(data):  # asked for: never silently fewer
        raise InputError(f"spec: samples={spec.samples} is not valid: it is more than the {len(data)} test images of "
                         f"{spec.dataset!r}; expected at most {len(data)} (leave it out: all of them, up to 500).")
    out, failed, size = [], [], data_image_size(data)
    data_ids: dict = {}  # per set: each model sees the images through its own preprocessing (and decision labels)
    for entry in spec.models:
        data_id, preprocess = None, None
        try:
            net = cache.load_model_cached(entry.spec, device, size)  # kept loaded: the cells run here reuse it
            weights, model_error = cache.fingerprint_cached(entry.spec, device, size), None
        except Exception as e:  # recorded as this model's failed cells; the grid goes on
            weights, model_error = None, f"model {entry.spec!r} did not load: {type(e).__name__}: {e}"
        else:
            try:
                model_data = cache.load_for_cached(spec.dataset, net)
                preprocess = getattr(net, "preprocess", None)
                if id(model_data) not in data_ids:
                    data_ids[id(model_data)] = fingerprint_data(model_data, samples), None
                data_id, split_id = data_ids[id(model_data)]
                check_matches(net, model_data)
            except ValueError as e:
                model_error = str(e)
        for task in spec.tasks:
            if not spec.runs(entry.name, task.name):
                continue
            for seed in spec.seeds:
                key_cfg = {"version": CELL_VERSION, "model": entry.spec, "weights": weights, "dataset": spec.dataset,
                           "data": data_id, "samples": samples, "batch_size": spec.batch_size, "seed": seed,
                           "task": task.config()}
                if data_id is not None and registry.get(task.method, task.kind).pool:
                    if split_id is None:  # donors come from the whole split: its every image is part of the result
                        split_id = fingerprint_data(model_data)
                        data_ids[id(model_data)] = data_id, split_id
                    key_cfg["split"] = split_id
                if squares := spec.heldout_detector and task.kind == "attack":  # the cell keeps its detector crops
                    key_cfg["squares"] = True
                if not (detector := spec.detector or task.kind != "attack"):  # its realism has no detector AUC
                    key_cfg["detector"] = False
                error, art = model_error, None
                if error is None:
                    try:
                        art = artifact_for(task, artifact_victim(entry.spec, net), weights, spec.dataset, seed,
                                           lambda p=preprocess: cache.fingerprint_train_split(spec.dataset, p))
                    except ValueError as e:
                        error = str(e)
                    else:
                        key_cfg["artifact"] = art and art["id"]
                        if art and not spec.train_missing and not Path(art["path"]).exists():
                            error = (f"no shipped or cached {task.method} artifact for this model, and the spec sets "
                                     "train_missing = false (true trains one with the preset's [train] recipe)")
                if error is not None:
                    failed.append({"key": digest(key_cfg), "model": entry.name, "task": task.name, "kind": task.kind,
                                   "seed": seed, "status": "failed", "config": key_cfg, "error": error})
                    continue
                out.append(Cell(digest(key_cfg), entry.name, entry.spec, task, spec.dataset, samples,
                                spec.batch_size, seed, art, squares, weights, detector))
    return out, failed


def plan_id(spec: Spec) -> str:
    """A digest of what determines the keys and names of ``spec``'s plan and needs nothing loaded.

    It covers the dataset, samples, seeds, batch size, ``train_missing``, ``detector``, ``heldout_detector`` (its
    cells keep their crops), the models (name, spec), the tasks (name, configuration, the models they are restricted
    to) and the cell version; not the title or notes. (The weights, images and artifacts the keys also hash are those
    of the last run.) A run records its plan under it; rendering reads the plan back with it.

    Args:
        spec: the spec.

    Returns:
        16 hex digits.

    Examples:
        >>> from robust.runner import parse_spec, plan_id
        >>> table = {"dataset": "digits-m", "models": ["zoo:digits-m/resnet"], "evaluations": ["patch-drop"]}
        >>> first = plan_id(parse_spec(table))
        >>> len(first), first == plan_id(parse_spec({**table, "title": "renamed"}))
        (16, True)
        >>> first == plan_id(parse_spec({**table, "seeds": [0, 1]}))
        False
    """
    models = sorted([m.name, m.spec] for m in spec.models)
    tasks = sorted([[t.name, t.config(), *([list(spec.only[t.name])] if t.name in spec.only else [])]
                    for t in spec.tasks], key=lambda nt: nt[0])
    return digest({"version": CELL_VERSION, "dataset": spec.dataset, "samples": spec.samples,
                   "seeds": sorted(spec.seeds), "batch_size": spec.batch_size, "train_missing": spec.train_missing,
                   "models": models, "tasks": tasks, **({"heldout_detector": True} if spec.heldout_detector else {}),
                   **({} if spec.detector else {"detector": False})})


def cell_names(cells: list[Cell], failed: list[dict]) -> dict[str, tuple[str, str]]:
    """The names a board shows for each key of a plan: its cells' and its failed rows'.

    Args:
        cells: the plan's runnable cells.
        failed: the plan's failed rows.

    Returns:
        ``{key: (model name, task name)}``.

    Examples:
        >>> from robust.runner import cell_names
        >>> cell_names([], [{"key": "ab12", "model": "mine", "task": "lavan-12pct"}])
        {'ab12': ('mine', 'lavan-12pct')}
    """
    return {**{c.key: (c.model, c.task.name) for c in cells}, **{f["key"]: (f["model"], f["task"]) for f in failed}}


def start_line(cells: int, pending: list[Cell]) -> str:
    """The line a run starts with: how many of its ``cells`` are done already, and which of the ``pending`` ones
    train their attack's artifact first (``Cell.trains_first``), which can take far longer than an attack.

    Examples:
        >>> from robust.presets import load_preset
        >>> from robust.runner import start_line
        >>> from robust.runner.cells import Cell
        >>> task = load_preset("gan-patch-12pct")
        >>> cell = Cell("k", "mine", "file:mine.pt", task, "digits-m", 8, 8, 0, {"source": "cache", "path": "none.pt"})
        >>> line = start_line(3, [cell])
        >>> line.split(";")[0], line.split(": ")[-1]
        ('2 of 3 cells already done', 'mine / gan-patch-12pct')
        >>> start_line(3, [])
        '3 of 3 cells already done'
    """
    line = f"{cells - len(pending)} of {cells} cells already done"
    if training := [f"{c.model} / {c.task.name}" for c in pending if c.trains_first]:
        line += ("; training first (no shipped or cached artifact; tens of minutes on a CPU; the spec's "
                 "train_missing = false fails such cells instead): " + ", ".join(training))
    return line


def cell_line(row: dict) -> str:
    """One line for a finished cell: model, task, seed, its headline (TCS or ASR, a curve's area) and seconds, or
    why it failed.

    Examples:
        >>> from robust.runner import cell_line
        >>> row = {"model": "mine", "task": "lavan-5", "seed": 0, "status": "done", "seconds": 0.4,
        ...        "result": {"tcs": None, "asr": None, "clean_correct": 0, "n": 16}}
        >>> cell_line(row)  # an untrained model: no image to attack, so no rate
        'mine / lavan-5 / seed 0: no rate: 0 of 16 images classified correctly unattacked, 0.4 s'
        >>> cell_line({**row, "result": {"tcs": 0.5, "clean_correct": 8, "n": 16}})
        'mine / lavan-5 / seed 0: TCS 50.0 %, 0.4 s'
    """
    where = f"{row['model']} / {row['task']} / seed {row['seed']}"
    if row["status"] != "done":
        return f"{where}: failed: {((row.get('error') or '').strip() or 'no reason recorded').splitlines()[0][:160]}"
    result, seconds = row["result"], row.get("seconds") or 0.0
    if "area" in result:
        headline = f"area {result['area']:.3f}"
    else:
        rate = "tcs" if result.get("tcs") is not None else "asr"
        headline = f"{rate.upper()} {100 * result[rate]:.1f} %" if result.get(rate) is not None else \
            f"no rate: {result.get('clean_correct', 0)} of {result.get('n', 0)} images classified correctly unattacked"
    return f"{where}: {headline}, {seconds:.1f} s"


def check_board_dir(out: str | os.PathLike) -> Path:
    """``out`` as a board folder: one that does not exist yet, is empty, or is already a board (it has the marker, or a
    results store).

    Any other folder is refused, so that no user file is ever overwritten. Nothing is created.

    Args:
        out: the folder.

    Returns:
        ``out`` as a path.

    Raises:
        InputError: ``out`` is a file, or a non-empty folder that is not a board.

    Examples:
        >>> from pathlib import Path
        >>> from robust.runner import check_board_dir
        >>> check_board_dir("new-board")
        PosixPath('new-board')
        >>> Path("notes").mkdir()
        >>> _ = Path("notes/todo.txt").write_text("mine")
        >>> check_board_dir("notes")
        Traceback (most recent call last):
        ...
        robust.checks.InputError: output directory 'notes' is not empty and is not a board folder (no .robust-board);
        refusing to write into it: expected a new or empty folder, or an earlier board (--out).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output directory {str(out)!r} is a file; expected a folder for the board.")
    if out.is_dir() and not (out / MARKER).is_file() and not (out / STORE_NAME).is_file() and any(out.iterdir()):
        raise InputError(f"output directory {str(out)!r} is not empty and is not a board folder (no {MARKER}); "
                         "refusing to write into it: expected a new or empty folder, or an earlier board (--out).")
    return out


def open_store(out: str | os.PathLike) -> Store:
    """The store of the board folder ``out``: the folder and its marker are created if needed (see ``check_board_dir``).

    Args:
        out: the board folder.

    Returns:
        The open ``Store`` of ``out/results.sqlite`` (close it, or use it as a context manager).

    Raises:
        InputError: a folder ``check_board_dir`` refuses, one that cannot be written, or a store of another schema.

    Examples:
        >>> from pathlib import Path
        >>> from robust.runner import open_store
        >>> with open_store("board") as store:
        ...     store.done()
        set()
        >>> sorted(p.name for p in Path("board").iterdir())
        ['.robust-board', 'results.sqlite']
    """
    out = check_board_dir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not (out / MARKER).is_file():  # one write, no temporary file: a run starting beside us sees a board
            with open(out / MARKER, "a", encoding="utf-8") as f:
                f.write(json.dumps({"format": BOARD_FORMAT}) + "\n")
        return Store(out / STORE_NAME)
    except (OSError, sqlite3.OperationalError) as e:
        raise InputError(f"output directory {str(out)!r} cannot be written ({getattr(e, 'strerror', None) or e}); "
                         "expected a writable folder (--out).") from None


def run_board(spec: Spec | str | os.PathLike, out: str | os.PathLike | None = None, *, executor: str = "local",
              device: str | None = None, workers: int | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> RunReport:
    """Run every cell of a board's spec that its store lacks, and render the board.

    A cell is a model x an attack or evaluation x a seed; each is keyed by a hash of its configuration, the model's
    weights and the images, and committed to ``results.sqlite`` in the board folder as it finishes, so a re-run
    skips finished cells and an interrupted run resumes where it stopped.

    Args:
        spec: the spec: a TOML file's path, or a parsed ``Spec``.
        out: the board folder (default: beside the spec, named after it).
        executor: ``local``, ``ray`` (a local Ray instance) or ``ray://HOST:PORT``.
        device: overrides the spec's device.
        workers: the local executor's processes on a CPU (default: ``$ROBUST_WORKERS``, else one per core, at most
            4).
        progress: called as ``progress(label, done, total)`` as cells finish.

    Returns:
        What the run did: the spec's cells, how many it skipped, ran and saw fail, its seconds and the folder.

    Raises:
        InputError: a bad spec, or a folder that is not a board.

    Examples:
        >>> from pathlib import Path
        >>> from robust import run_board
        >>> _ = Path("quick.toml").write_text('''
        ... title = "a quick patch"
        ... dataset = "digits-m"
        ... samples = 8
        ... models = ["zoo:digits-m/resnet"]
        ... attacks = [{ preset = "lavan-12pct", name = "lavan-5", params = { steps = 5 } }]
        ... ''')
        >>> report = run_board("quick.toml", workers=1)
        >>> report.cells, report.ran, report.failed, str(report.out)
        (1, 1, 0, 'quick')
        >>> run_board("quick.toml", workers=1).skipped  # finished cells are kept
        1
    """
    from robust.runner.cache import load_dataset_cached
    from robust.runner.executors import check_executor, cpu_workers, local_devices

    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    out = Path(out) if out is not None else spec.default_out
    check_executor(executor)  # bad input fails before any model is loaded
    cpu_workers(workers)
    load_dataset_cached(spec.dataset)  # and data that is not there fails before a store is made for it
    with open_store(out) as store:  # a bad folder fails before any model is loaded, too
        devices = local_devices(device or spec.device, workers)
        cells, failed = plan(spec, devices[0] if executor == "local" and len(devices) == 1 else "cpu")
        store.set_plan(plan_id(spec), cell_names(cells, failed))  # first: an interrupted run's board renders too
    return run_cells(cells, failed, out, executor=executor, device=device or spec.device, workers=workers,
                     progress=progress)


def run_cells(cells: list[Cell], failed: list[dict], out: str | os.PathLike, *, executor: str = "local",
              device: str = "auto", workers: int | None = None,
              progress: Callable[[str, int, int], None] | None = None, poll: float = 1.0) -> RunReport:
    """Store ``failed`` rows and run those of ``cells`` not yet done in ``out``'s store (see ``run_board``).

    Each cell is claimed in the store before it is computed: cells another live run has claimed are left to it and
    waited for (checked every ``poll`` seconds), and taken over if that run dies. A failed row never replaces a done
    one. The plan is not recorded here (``run_board`` records it with ``Store.set_plan``).

    Args:
        cells: the cells to run (``plan``'s first value).
        failed: the failed rows to store (``plan``'s second value).
        out: the board folder (created if needed; see ``check_board_dir``).
        executor: ``local``, ``ray`` (a local Ray instance) or ``ray://HOST:PORT``.
        device: the local executor's device (``auto``, ``cpu``, ``cuda[:n]``, ...).
        workers: the local executor's processes on a CPU (default: ``$ROBUST_WORKERS``, else one per core, at most
            4); one cell, or one worker, runs in this process.
        progress: called as ``progress(label, done, total)``: once before any cell, then as cells finish.
        poll: seconds between checks on cells another run holds.

    Returns:
        What the run did (``cells`` counts the cells and the failed rows).

    Raises:
        InputError: a bad executor, device or workers, or a folder that is not a board.

    Examples:
        >>> from pathlib import Path
        >>> from robust.runner import load_spec, plan, run_cells
        >>> _ = Path("quick.toml").write_text('''
        ... dataset = "digits-m"
        ... samples = 8
        ... models = ["zoo:digits-m/resnet"]
        ... attacks = [{ preset = "lavan-12pct", name = "lavan-5", params = { steps = 5 } }]
        ... ''')
        >>> cells, failed = plan(load_spec("quick.toml"))
        >>> report = run_cells(cells, failed, "board", device="cpu", workers=1)
        >>> report.cells, report.ran, report.failed
        (1, 1, 0)
        >>> run_cells(cells, failed, "board", device="cpu", workers=1).skipped
        1
    """
    from robust.runner.executors import check_executor, local_devices, run_local, run_ray

    check_executor(executor)
    out = Path(out)
    progress = progress or (lambda label, done, total: None)
    start = time.perf_counter()
    owner = new_owner()
    with open_store(out) as store, Heartbeat(store.path, owner):
        done = store.done()
        pending = [c for c in cells if c.key not in done]
        for row in failed:
            store.put(row)  # never replaces a done row
        total, finished, counts = len(pending), 0, {"failed": len(failed), "work": 0.0, "cell_wall": 0.0, "others": 0}
        dispatched = time.perf_counter()

        def on_result(row: dict) -> None:
            nonlocal finished, dispatched
            store.put({**row, "wall": time.perf_counter() - dispatched}, owner=owner)
            counts["cell_wall"] += time.perf_counter() - dispatched  # including the commit
            dispatched = time.perf_counter()
            finished += 1
            counts["failed"] += row["status"] == "failed"
            counts["work"] += (row.get("seconds") or 0.0) + ((row.get("result") or {}).get("train_seconds") or 0.0)
            progress(cell_line(row), finished + counts["others"], total)

        busy: list[Cell] = []

        def claim(cell: Cell) -> bool:
            state = store.claim(cell.key, owner)
            if state == "busy":
                busy.append(cell)
            counts["others"] += state == "done"
            return state == "claimed"

        pending.sort(key=lambda c: not c.trains_first)  # the longest first, so the other workers' cells overlap them
        progress(start_line(len(cells), pending), 0, total)
        try:
            while pending:
                busy.clear()
                if executor == "local":
                    run_local(pending, local_devices(device, workers), on_result, claim=claim)
                else:
                    run_ray(pending, on_result, address=None if executor == "ray" else executor, claim=claim)
                finished_by_others = store.done()
                pending = [c for c in busy if c.key not in finished_by_others]
                counts["others"] += len(busy) - len(pending)
                if pending:
                    progress(f"{WAITING} {len(pending)} cell(s) that another run is computing (taken over if its "
                             f"claim goes unrenewed for {STALE_SECONDS:.0f} s)", finished + counts["others"], total)
                    time.sleep(poll)
        finally:
            store.release(owner)
    return RunReport(cells=len(cells) + len(failed), skipped=len(cells) - total + counts["others"], ran=finished,
                     failed=counts["failed"], wall=time.perf_counter() - start, work=counts["work"],
                     cell_wall=counts["cell_wall"], out=out)


def __getattr__(name: str) -> object:
    """``Cell`` on first use: ``robust.runner.cells`` imports torch, which the store, the spec and ``plan_id`` do not
    need (a process that only reads or writes a board's store starts in a fraction of the time)."""
    if name == "Cell":
        from robust.runner.cells import Cell

        return Cell
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BOARD_FORMAT", "MARKER", "STORE_NAME", "WAITING", "Cell", "RunReport", "Spec", "Store", "cell_names",
           "check_board_dir", "load_spec", "open_store", "parse_spec", "plan", "plan_id", "run_board", "run_cells"]
