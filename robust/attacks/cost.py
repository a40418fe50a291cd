"""What an attack costs, counted: the victim passes it spends per image (protocols section 7, the frontier).

An attack's cost is not its step count. Early stop ends most images long before the last step, Grad-CAM placement
spends a forward and a partial backward, a generator spends none of the victim's. So the cost is counted where it
is spent: a forward hook on the victim's network adds each forward's batch size, and a gradient hook on its output
adds the batch size again when a backward pass reaches it (Grad-CAM's backward, which stops at its layer, counts as
one). The counts are Python integers read from shapes: counting never waits on the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import torch

from robust.models.backbone import Backbone, unwrap_logits


@dataclasses.dataclass
class Passes:
    """Victim passes, in images: ``forward`` and ``backward`` images through the network while ``images`` images
    were attacked. Merges with ``+``; ``per_image`` is the frontier's cost axis.

    Example::

        passes = Passes()
        with counting(model, passes):
            attack(model, x, y)
        passes.images += x.shape[0]
        passes.per_image  # (forward + backward) / images
    """

    images: int = 0
    forward: int = 0
    backward: int = 0

    def __add__(self, other: Passes) -> Passes:
        if not isinstance(other, Passes):
            return NotImplemented
        return Passes(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))

    @property
    def per_image(self) -> float | None:
        """Forward plus backward passes per attacked image (None before any image)."""
        return (self.forward + self.backward) / self.images if self.images else None

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "per_image": self.per_image}


@contextlib.contextmanager
def counting(model: Backbone, passes: Passes) -> Iterator[Passes]:
    """Add to ``passes`` every forward and backward pass of ``model``'s network inside the block (hooks removed on
    exit, the model otherwise untouched)."""
    def backward(n: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            passes.backward += n
        return hook

    def forward(_module: torch.nn.Module, _inputs: tuple, output: object) -> None:
        logits = unwrap_logits(output)
        passes.forward += logits.shape[0]
        if logits.requires_grad:
            logits.register_hook(backward(logits.shape[0]))

    handle = model.net.register_forward_hook(forward)
    try:
        yield passes
    finally:
        handle.remove()


def inference(model: Backbone, x: torch.Tensor) -> dict:
    """What one prediction of ``model`` costs on the batch ``x``: its network's forward passes and the seconds, per
    image (a defended model's price: PatchCleanser spends tens of forwards, a preprocessing defence one).

    Shape:
        x: N x 3 x H x W in [0, 1].

    Examples:
        >>> import torch
        >>> from robust.attacks.cost import inference
        >>> from robust.models import load_model
        >>> inference(load_model("zoo:digits-m/resnet", "cpu"), torch.rand(4, 3, 32, 32))["forward"]
        1.0
    """
    import time

    from robust.models.state import eval_mode

    passes = Passes()
    with counting(model, passes), eval_mode(model), torch.no_grad():
        start = time.perf_counter()
        model.logits(x).sum().tolist()  # the value itself: the time includes the device's work
        seconds = time.perf_counter() - start
    return {"forward": passes.forward / x.shape[0], "seconds": seconds / x.shape[0]}

