"""LaVAN-style per-image patch (Karmon et al. 2018): the patch pixels alone are optimised for each image at its
window, by signed-gradient or Adam steps, clipped to [0, 1]. The strong, slow white-box baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robust.attacks.base import AttackResult, PatchAttack
from robust.checks import check_number, check_positive_int
from robust.models.backbone import Backbone
from robust.placement import paste
from robust.registry import register_attack

OPTIMIZERS = ("sign", "adam")


def patch_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, kind: str) -> torch.Tensor:
    """Per-sample loss to minimise: towards ``target`` (targeted) or away from ``y``; ``ce`` or ``cw`` margin."""
    if kind == "ce":
        return F.cross_entropy(logits, target, reduction="none") if target is not None else \
            -F.cross_entropy(logits, y, reduction="none")
    goal = target if target is not None else y
    own = logits.gather(1, goal[:, None])[:, 0]
    other = logits.scatter(1, goal[:, None], float("-inf")).amax(1)
    return other - own if target is not None else own - other


@register_attack
class LaVAN(PatchAttack):
    """``steps`` of ``optimizer`` updates (``sign``: step ``step_size``; ``adam``: learning rate ``step_size``) on
    a per-image patch initialised uniformly at random; ``loss`` is ``ce`` or the ``cw`` margin."""

    name = "lavan"
    description = "LaVAN: per-image patch pixels optimised at the window (white-box)"
    targeted = True

    def __init__(self, *, steps: int = 100, step_size: float = 0.01, optimizer: str = "sign", loss: str = "ce",
                 targeted: bool = True, **patch_params):
        super().__init__(**patch_params)
        check_positive_int(steps, "steps")
        check_number(step_size, "step_size", low=0, low_open=True, expected="a positive, finite number")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r} is not valid; expected one of {OPTIMIZERS}.")
        if loss not in ("ce", "cw"):
            raise ValueError(f"loss={loss!r} is not valid; expected 'ce' or 'cw'.")
        self.steps, self.step_size, self.optimizer, self.loss = steps, float(step_size), optimizer, loss
        self.targeted = bool(targeted)

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        boxes = self.locate(model, x)
        side = self.side(x)
        mask = self.mask(side, x.device)
        patch = torch.rand(x.shape[0], x.shape[1], side, side, generator=self.generator).to(x.device, x.dtype)
        patch = optimise_patch(model, x, y, target, patch, boxes, mask, steps=self.steps, step_size=self.step_size,
                               optimizer=self.optimizer, loss=self.loss)
        return AttackResult(paste(x, patch, boxes, mask), target, boxes, extra={"patch": patch})


def optimise_patch(model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                   patch: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor, *, steps: int, step_size: float,
                   optimizer: str = "sign", loss: str = "ce") -> torch.Tensor:
    """``steps`` updates of the per-image ``patch`` (N x C x p x p, pasted at ``boxes``) that lower
    ``patch_loss``; returns the optimised patch, detached and clipped to [0, 1]. Shared by ``lavan`` and the
    refinement of ``gan-patch``."""
    patch = patch.detach().clone().requires_grad_(True)
    adam = torch.optim.Adam([patch], lr=step_size) if optimizer == "adam" else None
    with torch.enable_grad():
        for _ in range(steps):
            value = patch_loss(model.logits(paste(x, patch, boxes, mask)), y, target, loss).sum()
            (grad,) = torch.autograd.grad(value, patch)
            with torch.no_grad():
                if adam is None:
                    patch -= step_size * grad.sign()
                else:
                    patch.grad = grad
                    adam.step()
                patch.clamp_(0, 1)
    return patch.detach()
