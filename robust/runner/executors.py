"""Where cells run. Every executor hands each finished cell's dict to ``on_result`` in the driver process, which
alone writes the store, and runs only the cells that ``claim(cell)`` grants (the run's lease in the store).

- ``local``: one worker process per device, each taking the next cell when it is free: every visible GPU, or on a
  CPU ``workers`` processes with the cores shared out as torch threads (two 1-thread processes on 2 cores do 1.2x
  the cells of one 2-thread process: the zoo's small models use a second thread poorly). One device (or one cell)
  runs in this process.
- ``ray``: each cell a Ray task (one GPU requested per cell when the cluster has GPUs); ``ray`` starts a local
  instance, ``ray://HOST:PORT`` or ``HOST:PORT`` joins a cluster.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from robust.checks import InputError, check_int
from robust.runner.cells import Cell, execute

OnResult = Callable[[dict], None]
Claim = Callable[[Cell], bool]
_WORKER_DEVICE: list[str] = []
#: the environment variable that sets how many worker processes a board runs on a CPU (``--workers``' default)
WORKERS_ENV = "ROBUST_WORKERS"
#: at most this many CPU workers by default: each holds its own copy of the board's models and data
MAX_CPU_WORKERS = 4


def cpu_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_workers(workers: int | None = None) -> int:
    """How many processes run a board's cells on a CPU: ``workers``, else ``$ROBUST_WORKERS``, else one per core
    (at most ``MAX_CPU_WORKERS``)."""
    expected = "a positive number of worker processes"
    if workers is not None:
        return check_int(workers, "workers", low=1, expected=expected)
    if (env := os.environ.get(WORKERS_ENV)) is not None:
        text = env.strip()
        return check_int(int(text) if text.isdigit() else env, WORKERS_ENV, low=1, expected=expected)
    return min(cpu_cores(), MAX_CPU_WORKERS)


def local_devices(device: str, workers: int | None = None) -> list[str]:
    """One entry per local worker: ``auto`` with several CUDA devices -> all of them; a CPU -> ``cpu`` once per
    worker (``cpu_workers(workers)``); otherwise the one resolved device."""
    import torch

    from robust.device import resolve_device

    if device == "auto" and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    resolved = str(resolve_device(device))
    return [resolved] * (cpu_workers(workers) if resolved == "cpu" else 1)


def _exit_with(parent: int) -> None:
    """Exit this worker as soon as its driver ``parent`` is gone. A driver killed by a signal never shuts its pool
    down, and its workers would run on, orphaned, holding the cores a rerun needs (the rerun redoes their cells)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="robust-parent-watch", daemon=True).start()


def _init_worker(devices: multiprocessing.Queue, threads: int | None, parent: int) -> None:
    import torch

    from robust.device import quiet_known_warnings

    _exit_with(parent)
    quiet_known_warnings()
    if threads is not None:
        torch.set_num_threads(threads)
    _WORKER_DEVICE.append(devices.get())


def _execute_in_worker(cell: Cell) -> dict:
    return execute(cell, _WORKER_DEVICE[0])


def _granted(cells: Sequence[Cell], claim: Claim | None) -> list[Cell]:
    return [c for c in cells if claim is None or claim(c)]


def run_local(cells: Sequence[Cell], devices: Sequence[str], on_result: OnResult, claim: Claim | None = None) -> None:
    """Run ``cells`` here (one device: each claimed just before it runs) or in one spawned worker process per
    device (all claimed first; CPU workers share the cores out as torch threads)."""
    if not devices:
        raise InputError("devices is empty; expected at least one device.")
    if len(devices) == 1 or len(cells) <= 1:
        for cell in cells:
            if claim is None or claim(cell):
                on_result(execute(cell, devices[0]))
        return
    cells = _granted(cells, claim)
    if not cells:
        return
    devices = devices[:len(cells)]  # no worker without a cell
    ctx = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    queue = ctx.Queue()
    for d in devices:
        queue.put(d)
    threads = max(1, cpu_cores() // len(devices)) if all(d == "cpu" for d in devices) else None
    with ProcessPoolExecutor(len(devices), mp_context=ctx, initializer=_init_worker,
                             initargs=(queue, threads, os.getpid())) as pool:
        pending = {pool.submit(_execute_in_worker, c) for c in cells}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                on_result(f.result())


def check_executor(executor: str) -> None:
    """``local``, ``ray``, or a Ray address that answers; anything else is a one-line error."""
    if not isinstance(executor, str) or not (executor in ("local", "ray") or executor.startswith("ray://")
                                             or ":" in executor):
        raise InputError(f"executor={executor!r} is not valid; expected local, ray or ray://HOST:PORT.")
    if executor not in ("local", "ray"):
        _check_reachable(executor)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in one line, quickly, when a Ray address does not answer (ray.init would retry for minutes)."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(f"executor address {address!r} is not valid; expected ray://HOST:PORT or HOST:PORT.")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise InputError(f"Ray at {address!r} is unreachable ({e.strerror or e}); start a cluster there "
                         "(`ray start --head`) or use --executor local.") from None


def run_ray(cells: Sequence[Cell], on_result: OnResult, address: str | None = None, claim: Claim | None = None
            ) -> None:
    """Run ``cells`` as Ray tasks on a local instance (``address`` None) or the cluster at ``address`` (the cells
    ``claim`` grants, all claimed before any is submitted)."""
    cells = _granted(cells, claim)
    if not cells:
        return
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'robust-suite[ray]'.") from None
    if address is not None:
        _check_reachable(address)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1, max_retries=1)(_ray_cell)
        pending = [task.remote(c, bool(gpus)) for c in cells]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                on_result(ray.get(ref))
    finally:
        if started:
            ray.shutdown()


def _ray_cell(cell: Cell, gpu: bool) -> dict:
    # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU, so inside the task it is plain "cuda".
    return execute(cell, "cuda" if gpu else "cpu")
