"""LaVAN-style per-image patch (Karmon et al. 2018): the patch pixels alone are optimised for each image at its
window, by signed-gradient or Adam steps, clipped to [0, 1]. The strong, slow white-box baseline."""

from __future__ import annotations

import torch

from robust.attacks.base import AttackResult, PatchAttack, attack_loss
from robust.checks import check_number, check_positive_int
from robust.draws import Draws
from robust.models.backbone import Backbone
from robust.placement import paste
from robust.registry import register_attack

OPTIMIZERS = ("sign", "adam")


@register_attack
class LaVAN(PatchAttack):
    """Up to ``steps`` of ``optimizer`` updates (``sign``: step ``step_size``; ``adam``: learning rate
    ``step_size``) on a per-image patch initialised uniformly at random (per image, see ``robust.draws``), each
    image stopping at its first patch that succeeds; ``loss`` is ``ce`` or the ``cw`` margin."""

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

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
            draws: Draws) -> AttackResult:
        boxes = self.locate(model, x, draws)
        side = self.side(x)
        mask = self.mask(side, x.device)
        patch = draws.uniform("init", x.shape[1], side, side).to(x.dtype)
        patch = optimise_patch(model, x, y, target, patch, boxes, mask, steps=self.steps, step_size=self.step_size,
                               optimizer=self.optimizer, loss=self.loss)
        return AttackResult(paste(x, patch, boxes, mask), target, boxes, extra={"patch": patch})


def optimise_patch(model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                   patch: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor, *, steps: int, step_size: float,
                   optimizer: str = "sign", loss: str = "ce") -> torch.Tensor:
    """Up to ``steps`` updates of the per-image ``patch`` (N x C x p x p, pasted at ``boxes``) that lower
    ``attack_loss``; returns the optimised patch, detached and clipped to [0, 1]. Each image stops at its first
    patch that succeeds (the target, or any wrong class when untargeted): a success is never lost to a later step,
    and the steps after it cost nothing. Adam's moments are kept per image. Shared by ``lavan`` and the refinement
    of ``gan-patch``."""
    patch = patch.detach().clone()
    moments = (torch.zeros_like(patch), torch.zeros_like(patch)) if optimizer == "adam" else None
    live = torch.arange(x.shape[0], device=x.device)  # images still being optimised
    for step in range(steps + 1):
        p = patch[live].requires_grad_(True)
        goal = None if target is None else target[live]
        with torch.enable_grad():
            logits = model.logits(paste(x[live], p, boxes[live], mask))
            pred = logits.argmax(1)
            hit = pred == goal if goal is not None else pred != y[live]
            if step == steps or bool(hit.all()):
                break
            value = (attack_loss(logits.float(), y[live], goal, loss) * ~hit).sum()
            (grad,) = torch.autograd.grad(value, p)
        live, grad = live[~hit], grad[~hit]
        with torch.no_grad():
            if moments is None:
                patch[live] = (patch[live] - step_size * grad.sign()).clamp(0, 1)
            else:  # Adam (Kingma and Ba 2015, default betas), per image
                m, v = moments
                m[live] = 0.9 * m[live] + 0.1 * grad
                v[live] = 0.999 * v[live] + 0.001 * grad * grad
                m_hat, v_hat = m[live] / (1 - 0.9 ** (step + 1)), v[live] / (1 - 0.999 ** (step + 1))
                patch[live] = (patch[live] - step_size * m_hat / (v_hat.sqrt() + 1e-8)).clamp(0, 1)
    return patch
