"""Device selection: ``auto`` picks CUDA, then MPS, then the CPU; nothing is hard-coded."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

import torch

from robust.checks import InputError, check_choice

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto`` / ``cpu`` / ``cuda[:n]`` / ``mps`` (or a ``torch.device``) into an available device.

    ``auto`` picks CUDA, then MPS, then the CPU; nothing is hard-coded. A ``torch.device`` is returned as it is,
    unchecked.

    Args:
        device: ``'auto'``, ``'cpu'``, ``'mps'``, ``'cuda'``, ``'cuda:N'`` or a ``torch.device``; None means ``'auto'``.

    Returns:
        The device.

    Raises:
        InputError: another string, or a device this machine does not have (no CUDA, no GPU N, no MPS).

    Examples:
        >>> import torch
        >>> from robust.device import resolve_device
        >>> resolve_device("cpu"), resolve_device(torch.device("cpu"))
        (device(type='cpu'), device(type='cpu'))
        >>> resolve_device("auto").type in ("cuda", "mps", "cpu")
        True
        >>> resolve_device("gpu")
        Traceback (most recent call last):
        robust.checks.InputError: device='gpu' is not valid; expected 'auto', 'cpu', 'mps' or 'cuda[:n]'.
    """
    if isinstance(device, torch.device):
        return device
    device = "auto" if device is None else device
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise InputError(f"device={device!r} is not valid; expected 'auto', 'cpu', 'mps' or 'cuda[:n]'.")
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device={device!r} was requested but CUDA is not available here; use 'cpu' or 'auto'.")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"device={device!r} does not exist; this machine has {torch.cuda.device_count()} CUDA "
                             "device(s).")
    if device == "mps" and not mps:
        raise InputError("device='mps' was requested but MPS is not available here; use 'cpu' or 'auto'.")
    return torch.device(device)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``, queued without the host waiting for the GPU.

    Random draws are made on a seeded CPU generator so that they are the same on every device. Copying them with a
    plain ``t.to("cuda")`` from ordinary (pageable) memory makes the host wait until the GPU has finished all the
    work queued before it: a host sync in the middle of a step, reported by CUDA's sync-debug mode. From pinned memory
    the copy is only queued. Any other pair of devices is a plain ``t.to(device)``.

    Args:
        t: the tensor, any shape.
        device: where it is needed.

    Returns:
        ``t`` on ``device`` (``t`` itself when it is there already).

    Shape:
        t: any; returns the same shape.

    Examples:
        >>> import torch
        >>> from robust.device import to_device
        >>> to_device(torch.arange(3), torch.device("cpu"))
        tensor([0, 1, 2])
    """
    if t.device.type == "cpu" and device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


PRECISIONS = ("fp32", "bf16", "fp16")


def autocast(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager[None]:
    """A ``torch.autocast`` context for ``precision`` on ``device``'s type, or a no-op where it does not apply.

    ``fp32`` is no autocast; ``fp16`` applies on CUDA only and ``bf16`` where the device supports it (CUDA, and CPUs:
    slower than fp32 on CPUs without native bf16), a no-op elsewhere (e.g. MPS), so one configuration runs on any
    machine.

    Args:
        device: the device the block computes on (only its type is read).
        precision: ``fp32``, ``bf16`` or ``fp16`` (``PRECISIONS``).

    Returns:
        The context manager: ``torch.autocast`` or ``contextlib.nullcontext``.

    Raises:
        InputError: another precision.

    Examples:
        >>> import torch
        >>> from robust.device import autocast
        >>> cpu = torch.device("cpu")
        >>> with autocast(cpu, "bf16"):
        ...     print((torch.ones(2, 2) @ torch.ones(2, 2)).dtype)
        torch.bfloat16
        >>> with autocast(cpu, "fp16"):  # CUDA only: a no-op here
        ...     print((torch.ones(2, 2) @ torch.ones(2, 2)).dtype)
        torch.float32
    """
    check_choice(precision, PRECISIONS, "precision")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None or (dtype is torch.float16 and device.type != "cuda") or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Run the block on one CPU thread, then restore the thread count.

    A CPU's float sums depend on how many threads split them, so a figure computed by training (the realism
    detector's AUC) moved in its third decimal between one 2-thread process and two 1-thread workers on the same
    machine; pinned to one thread it is the same whatever the worker count (e.g. ``with one_cpu_thread(): net =
    train_detector(clean, attacked)``). It sets ``torch.set_num_threads``, which is process-wide.

    Returns:
        A context manager (yields None).

    Examples:
        >>> import torch
        >>> from robust.device import one_cpu_thread
        >>> before = torch.get_num_threads()
        >>> with one_cpu_thread():
        ...     print(torch.get_num_threads())
        1
        >>> torch.get_num_threads() == before
        True
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def quiet_known_warnings() -> None:
    """Hide a warning of robust's pinned dependencies that no user can act on.

    timm 1.0.9 (pinned by robustbench) uses ``torch.jit.interface``, which torch >= 2.10 flags at import time with a
    FutureWarning. Called by the ``robust`` command and by each board worker process (a spawned process starts with
    the default filters). It adds an ``ignore`` filter to the process's warning filters (``warnings.filterwarnings``)
    and touches nothing else.

    Examples:
        >>> import warnings
        >>> from robust.device import quiet_known_warnings
        >>> with warnings.catch_warnings(record=True) as caught:  # the filters come back after the block
        ...     warnings.simplefilter("always")
        ...     quiet_known_warnings()
        ...     warnings.warn("`torch.jit.interface` is deprecated. Please use `torch.compile` instead.", FutureWarning)
        ...     warnings.warn("something else", FutureWarning)
        >>> [str(w.message) for w in caught]
        ['something else']
    """
    warnings.filterwarnings("ignore", message=r"`torch.jit.interface` is deprecated", category=FutureWarning)


__all__ = ["PRECISIONS", "autocast", "one_cpu_thread", "quiet_known_warnings", "resolve_device", "to_device"]
