"""LaVAN-style per-image patch (Karmon et al. 2018): the patch pixels alone are optimised for each image at its
window, by signed-gradient or Adam steps, clipped to [0, 1]. The strong, slow white-box baseline."""

from __future__ import annotations

import torch

from robust.attacks.base import AttackResult, PatchAttack, attack_loss, bounded, compact_after
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


def patch_step(model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, patch: torch.Tensor,
               boxes: torch.Tensor, mask: torch.Tensor, active: torch.Tensor,
               moments: tuple[torch.Tensor, torch.Tensor] | None, *, step: int, step_size: float, loss: str,
               margin: float, limits: tuple[torch.Tensor, torch.Tensor] | None, last: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None,
                          torch.Tensor]:
    """One step of ``optimise_patch`` on a batch, masked and without a host sync: each image's patch is scored
    (``success_margin``) and, while active and short of ``margin``, moved by a signed or an Adam step (``moments``:
    Adam's per-image first and second moments; None: signed steps); a finished image keeps its patch and moments.

    Args:
        model: the victim.
        x: the images.
        y: their labels.
        target: their targets (None: untargeted).
        patch: the current patches.
        boxes: where they are pasted (checked by the caller).
        mask: the patch's shape.
        active: the images still being optimised.
        moments: Adam's moments, or None.
        step: the step's index (Adam's bias correction).
        step_size: the step size.
        loss: ``attack_loss``'s kind.
        margin: the margin at which an image is done.
        limits: per-pixel bounds of each patch (``PatchAttack.limits``), or None for [0, 1].
        last: score only, no update.

    Returns:
        (the patches scored, their margins, the next patches, the next moments, the images still active).

    Shape:
        x: N x C x H x W; y, target, active: N; patch, moments, limits: N x C x p x p; boxes: N x 4; mask: p x p.

    Examples:
        >>> import torch
        >>> from robust.attacks.lavan import patch_step
        >>> from robust.models import load_model
        >>> model, x = load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32)
        >>> scored, reached, patch, _, active = patch_step(
        ...     model, x, torch.tensor([0, 1]), torch.tensor([5, 6]), torch.rand(2, 3, 5, 5),
        ...     torch.tensor([[0, 0, 5, 5], [9, 9, 5, 5]]), torch.ones(5, 5), torch.ones(2, dtype=torch.bool), None,
        ...     step=0, step_size=0.1, loss="ce", margin=0.0, limits=None, last=False)
        >>> tuple(reached.shape), tuple(patch.shape), bool(patch.min() >= 0)
        ((2,), (2, 3, 5, 5), True)
    """
    p = patch.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model.logits(paste(x, p, boxes, mask, check=False)).float()
        reached = success_margin(logits.detach(), y, target)
        moving = active & (reached <= margin)
        if last:
            return p.detach(), reached, patch, moments, moving
        value = (attack_loss(logits, y, target, loss) * moving).sum()
        (grad,) = torch.autograd.grad(value, p)
    keep = moving.view(-1, 1, 1, 1)
    with torch.no_grad():
        if moments is None:
            return p.detach(), reached, torch.where(keep, bounded(patch - step_size * grad.sign(), limits), patch), \
                None, moving
        m = torch.where(keep, 0.9 * moments[0] + 0.1 * grad, moments[0])  # Adam (Kingma and Ba 2015), per image
        v = torch.where(keep, 0.999 * moments[1] + 0.001 * grad * grad, moments[1])
        m_hat, v_hat = m / (1 - 0.9 ** (step + 1)), v / (1 - 0.999 ** (step + 1))
        moved = bounded(patch - step_size * m_hat / (v_hat.sqrt() + 1e-8), limits)
        return p.detach(), reached, torch.where(keep, moved, patch), (m, v), moving


def optimise_patch(model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                   patch: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor, *, steps: int, step_size: float,
                   optimizer: str = "sign", loss: str = "ce", margin: float = 0.0,
                   limits: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``steps`` updates of the per-image ``patch`` (N x C x p x p, pasted at ``boxes``) that lower
    ``attack_loss``. Returns each image's best patch (detached, in [0, 1]) and its ``success_margin``: an image
    stops once its margin exceeds ``margin`` (0: its first success), so a success is never lost to a later step;
    one that never gets there keeps its highest-margin iterate. Adam's moments are kept per image. ``limits``
    (``PatchAttack.limits``) bound every iterate to what it replaces; [0, 1] without. The steps are
    ``patch_step``'s, sync-free; finished images leave the batch when ``compact_after`` says. Shared by ``lavan``
    and the refinement of ``gan-patch``."""
    check_boxes(boxes, x.shape[0], tuple(x.shape[-2:]))  # once: the steps paste unchecked (no host sync)
    patch = patch.detach().clone()
    best, score = patch.clone(), torch.full((x.shape[0],), float("-inf"), device=x.device)
    moments = (torch.zeros_like(patch), torch.zeros_like(patch)) if optimizer == "adam" else None
    rows = torch.arange(x.shape[0], device=x.device)  # the images in the batch being stepped
    active = torch.ones_like(rows, dtype=torch.bool)
    for step in range(steps + 1):
        scored, reached, moved, stepped, active = patch_step(
            model, x[rows], y[rows], None if target is None else target[rows], patch[rows], boxes[rows], mask,
            active, None if moments is None else (moments[0][rows], moments[1][rows]), step=step,
            step_size=step_size, loss=loss, margin=margin,
            limits=None if limits is None else (limits[0][rows], limits[1][rows]), last=step == steps)
        better = (reached > score[rows]).view(-1, 1, 1, 1)
        best[rows], score[rows] = torch.where(better, scored, best[rows]), torch.maximum(reached, score[rows])
        if step == steps:
            break
        patch[rows] = moved
        if moments is not None:
            moments[0][rows], moments[1][rows] = stepped
        if compact_after(step, x.device):  # drop the finished images: one host sync
            keep = active.nonzero()[:, 0]
            rows, active = rows[keep], active[keep]
            if keep.numel() == 0:
                break
    return best, score
