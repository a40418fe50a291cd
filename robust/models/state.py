"""Leave the model as found: run in eval mode and restore every module's own training flag afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then give each submodule back its own ``training`` flag.

    The obvious ``was = model.training; model.eval(); ...; model.train(was)`` is wrong: ``model.train(flag)`` sets one
    flag for all the submodules, so a module its owner kept in eval mode (a frozen BatchNorm, a disabled Dropout)
    would come back in training mode. Here every module's own flag is recorded first and restored, even when the
    block raises.

    Args:
        model: the module.

    Returns:
        A context manager that yields ``model`` itself.

    Examples:
        >>> from torch import nn
        >>> from robust.models.state import eval_mode
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        >>> _ = net[1].eval()  # kept in eval mode by its owner
        >>> with eval_mode(net):
        ...     print([m.training for m in net.modules()])
        [False, False, False]
        >>> [m.training for m in net.modules()]  # net.train(True) would have said [True, True, True]
        [True, True, False]
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def preserved_grads(model: nn.Module) -> Iterator[nn.Module]:
    """Give every parameter its ``.grad`` back after the block.

    For libraries that call ``backward()`` (or ``zero_grad``) on the model: each parameter's ``.grad`` is set back
    to the tensor (or None) it held when the block started, with the values it held, even when the block raises.
    Keeping the tensor is not enough: a block that adds into it in place (``backward()`` with no ``zero_grad()``
    before it, or ``zero_grad(set_to_none=False)``) changes it, so its values are copied and written back.

    Args:
        model: the module.

    Returns:
        A context manager that yields ``model`` itself.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from robust.models.state import preserved_grads
        >>> net = nn.Linear(2, 1)
        >>> net(torch.ones(1, 2)).sum().backward()
        >>> kept = net.weight.grad
        >>> with preserved_grads(net):
        ...     (3 * net(torch.ones(1, 2))).sum().backward()  # adds into the kept tensor in place
        >>> net.weight.grad, net.weight.grad is kept
        (tensor([[1., 1.]]), True)
    """
    saved = [(p, p.grad, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()]
    try:
        yield model
    finally:
        for p, grad, values in saved:
            if grad is not None:
                grad.detach().copy_(values)
            p.grad = grad


__all__ = ["eval_mode", "preserved_grads"]
