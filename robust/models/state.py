"""Leave the model as found: run in eval mode and restore every module's own training flag afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then give each submodule back its own ``training`` flag
    (``model.train(flag)`` would not: it sets one flag for all)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def preserved_grads(model: nn.Module) -> Iterator[nn.Module]:
    """Give every parameter its ``.grad`` back after the block (for libraries that call ``backward()``)."""
    saved = [(p, p.grad) for p in model.parameters()]
    try:
        yield model
    finally:
        for p, g in saved:
            p.grad = g


__all__ = ["eval_mode", "preserved_grads"]
