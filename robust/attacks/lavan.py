"""LaVAN-style per-image patch (Karmon et al. 2018): the patch pixels alone are optimised for each image at its
window, by signed-gradient or Adam steps, clipped to [0, 1]. The strong, slow white-box baseline."""

from __future__ import annotations

import torch

from robust.attacks.base import AttackResult, PatchAttack, attack_loss, bounded
from robust.checks import InputError, check_choice, check_number, check_positive_int
from robust.draws import Draws
from robust.models.backbone import Backbone
from robust.placement import check_boxes, paste
from robust.registry import register_attack

OPTIMIZERS = ("sign", "adam")


@register_attack
class LaVAN(PatchAttack):
    """LaVAN-style per-image patch (Karmon et al. 2018): the patch pixels alone optimised for each image at its window.

    Up to ``steps`` of ``optimizer`` updates (``sign``: step ``step_size``; ``adam``: learning rate ``step_size``) on a
    per-image patch initialised uniformly at random (per image, see ``robust.draws``); ``loss`` is ``ce`` or the
    ``cw`` margin. Each image keeps its best patch (the highest margin of the target over every other class; untargeted:
    of the largest wrong class over the label) and stops once that margin exceeds ``margin`` (0: at its first
    success). ``restarts`` random starts: an image that has not reached the margin starts again, and keeps the best
    patch over all restarts. Every iterate stays in [0, 1] (and within ``bound`` of the window it replaces). The
    strongest per-image patch attack here: the reference (TCS*) a generator is measured against.

    The defaults (Adam, learning rate 0.1, CW margin) were chosen on digits-m's validation split: 100 steps reach
    TCS 0.904 there against 0.826 for 100 signed steps of 0.01 on cross-entropy
    (``bench/results/2026-11-26-cpu/lavan-choice-val.txt``, reproduced with ``bench/reference.py --split val``).

    Args:
        steps: the most updates per image and restart (the per-image budget a board's frontier varies).
        step_size: the signed step, or Adam's learning rate.
        optimizer: ``sign`` or ``adam`` (Adam's moments kept per image).
        loss: ``ce`` (cross-entropy) or ``cw`` (the logit margin).
        restarts: random starts, for the images that have not reached ``margin``.
        margin: the logit margin at which an image stops, >= 0.
        targeted: towards a target (the default) or away from the label.
        **patch_params: the options of every patch attack (``PatchAttack``: ``area``, ``placement``, ``shape``,
            ``stride``, ``bound``; and ``Attack``'s: ``target``, ``seed``, ``precision``,
            ``channels_last``, ``adaptive``).

    Shape:
        As ``Attack``; ``extra["patch"]``: each image's best patch, N x 3 x p x p; ``extra["margin"]``: its margin,
        N (positive: a success).

    Examples:
        >>> import torch
        >>> from robust.attacks.lavan import LaVAN
        >>> from robust.models import load_model
        >>> attack = LaVAN(area=0.12, placement="center", steps=2)
        >>> result = attack(load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32), torch.tensor([3, 5]))
        >>> tuple(result.extra["patch"].shape), tuple(result.extra["margin"].shape)
        ((2, 3, 11, 11), (2,))
    """

    name = "lavan"
    steps_param = "steps"  # the per-image budget a board's frontier varies
    description = "LaVAN: per-image patch pixels optimised at the window (white-box; restarts, best patch kept)"
    targeted = True

    def __init__(self, *, steps: int = 100, step_size: float = 0.1, optimizer: str = "adam", loss: str = "cw",
                 restarts: int = 1, margin: float = 0.0, targeted: bool = True, **patch_params: object):
        super().__init__(**patch_params)
        check_positive_int(steps, "steps")
        check_positive_int(restarts, "restarts")
        check_number(step_size, "step_size", low=0, low_open=True, expected="a positive, finite number")
        check_number(margin, "margin", low=0, expected="a finite number >= 0 (logits)")
        check_choice(optimizer, OPTIMIZERS, "optimizer")
        if loss not in ("ce", "cw"):
            raise InputError(f"loss={loss!r} is not valid; expected 'ce' or 'cw'.")
        self.steps, self.step_size, self.optimizer, self.loss = steps, float(step_size), optimizer, loss
        self.restarts, self.margin, self.targeted = restarts, float(margin), bool(targeted)

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
            draws: Draws) -> AttackResult:
        boxes = self.locate(model, x, draws)
        side = self.side(x)
        mask = self.mask(side, x.device)
        limits = self.limits(x, boxes)
        best = bounded(draws.uniform("init", x.shape[1], side, side).to(x.dtype), limits)
        score = torch.full((x.shape[0],), float("-inf"), device=x.device)
        todo = torch.arange(x.shape[0], device=x.device)  # images that have not reached the margin yet
        for restart in range(self.restarts):
            mine = None if limits is None else (limits[0][todo], limits[1][todo])
            start = best[todo] if restart == 0 else bounded(
                draws.subset(todo).uniform(f"init/{restart}", x.shape[1], side, side).to(x.dtype), mine)
            patch, margin = optimise_patch(model, x[todo], y[todo], None if target is None else target[todo], start,
                                           boxes[todo], mask, steps=self.steps, step_size=self.step_size,
                                           optimizer=self.optimizer, loss=self.loss, margin=self.margin, limits=mine)
            better = margin > score[todo]
            best[todo[better]], score[todo[better]] = patch[better], margin[better]
            todo = todo[margin <= self.margin]
            if todo.numel() == 0:
                break
        return AttackResult(paste(x, best, boxes, mask), target, boxes, extra={"patch": best, "margin": score})


def success_margin(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Per image, how far the attack has succeeded: the target's logit minus the largest other (targeted), or the
    largest wrong logit minus the label's (untargeted). Positive means success (argmax is the target / wrong)."""
    return -attack_loss(logits, y, target, "cw")


def optimise_patch(model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                   patch: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor, *, steps: int, step_size: float,
                   optimizer: str = "sign", loss: str = "ce", margin: float = 0.0,
                   limits: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``steps`` updates of the per-image ``patch`` (N x C x p x p, pasted at ``boxes``) that lower
    ``attack_loss``. Returns each image's best patch (detached, in [0, 1]) and its ``success_margin``: an image
    stops once its margin exceeds ``margin`` (0: its first success), so a success is never lost to a later step
    and the steps after it cost nothing; one that never gets there keeps its highest-margin iterate. Adam's
    moments are kept per image. ``limits`` (``PatchAttack.limits``) bound every iterate to what it replaces; [0, 1]
    without. Shared by ``lavan`` and the refinement of ``gan-patch``."""
    check_boxes(boxes, x.shape[0], tuple(x.shape[-2:]))  # once: the steps paste unchecked (no host sync)
    patch = patch.detach().clone()
    best, score = patch.clone(), torch.full((x.shape[0],), float("-inf"), device=x.device)
    moments = (torch.zeros_like(patch), torch.zeros_like(patch)) if optimizer == "adam" else None
    live = torch.arange(x.shape[0], device=x.device)  # images still being optimised
    for step in range(steps + 1):
        p = patch[live].requires_grad_(True)
        goal = None if target is None else target[live]
        with torch.enable_grad():
            logits = model.logits(paste(x[live], p, boxes[live], mask, check=False)).float()
            reached = success_margin(logits.detach(), y[live], goal)
            better = reached > score[live]
            best[live[better]], score[live[better]] = p.detach()[better], reached[better]
            done = reached > margin
            if step == steps or bool(done.all()):
                break
            value = (attack_loss(logits, y[live], goal, loss) * ~done).sum()
            (grad,) = torch.autograd.grad(value, p)
        live, grad = live[~done], grad[~done]
        with torch.no_grad():
            box = None if limits is None else (limits[0][live], limits[1][live])
            if moments is None:
                patch[live] = bounded(patch[live] - step_size * grad.sign(), box)
            else:  # Adam (Kingma and Ba 2015, default betas), per image
                m, v = moments
                m[live] = 0.9 * m[live] + 0.1 * grad
                v[live] = 0.999 * v[live] + 0.001 * grad * grad
                m_hat, v_hat = m[live] / (1 - 0.9 ** (step + 1)), v[live] / (1 - 0.999 ** (step + 1))
                patch[live] = bounded(patch[live] - step_size * m_hat / (v_hat.sqrt() + 1e-8), box)
    return best, score
