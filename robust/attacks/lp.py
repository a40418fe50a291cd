"""L_p attacks: PGD (Linf, L2) of our own, and FGSM, APGD, CW, Square, AutoAttack from torchattacks.

PGD (Madry et al. 2018) is batched with per-image random starts (``robust.draws``: the figure does not depend on
the batch size), ``restarts`` random restarts and a per-image early stop: an image leaves the batch at the first
iterate that is adversarial (misclassified, or the target when targeted), so a restart and every later step only
cost what is still robust; an image robust to every restart keeps its last iterate.

For the torchattacks methods the Backbone normalises inside, so torchattacks sees [0,1] images; targets come
from the base class's one vectorised draw (``set_mode_targeted_by_function``), not torchattacks' per-sample
loop; torchattacks' own random draws (APGD's start, Square's sampling) run under a forked RNG seeded with the
attack's seed, so results repeat and the caller's global RNG is untouched, but they are drawn per batch: those
figures can move with the batch size. Parameters' ``.grad`` are restored afterwards.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import torch
from torch import nn

from robust.attacks.base import Attack, AttackResult, attack_loss, compact_after
from robust.checks import InputError, check_number, check_positive_int
from robust.draws import Draws
from robust.models.backbone import Backbone
from robust.models.state import preserved_grads
from robust.registry import register_attack

if TYPE_CHECKING:
    from torchattacks.attack import Attack as TorchAttack

#: method -> (torchattacks class, or None for our own PGD; norm; supports our targets)
METHODS = {
    "fgsm": ("FGSM", "Linf", True), "pgd": (None, "Linf", True), "pgd-l2": (None, "L2", True),
    "apgd": ("APGD", "Linf", False), "cw": ("CW", "L2", True), "square": ("Square", "Linf", True),
    "autoattack": ("AutoAttack", "Linf", False),
}


class _Logits(nn.Module):
    """What torchattacks calls: the Backbone's unchecked logits (no input validation on every step)."""

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.logits(x)


@register_attack
class LpAttack(Attack):
    """An L_p-bounded attack: our batched PGD (Linf or L2), or FGSM, APGD, CW, Square or AutoAttack from torchattacks.

    ``method`` with budget ``eps`` (Linf: 8/255 by default; L2 methods: 0.5) and ``steps`` iterations; ``targeted``
    where supported. PGD (Madry et al. 2018): step ``alpha`` (default 2.5 * eps / steps, Madry et al.'s rule),
    ``restarts`` random starts drawn per image, ``loss`` ``ce`` or the ``cw`` margin, and each image stops at its first
    adversarial iterate. APGD: ``restarts`` is torchattacks' ``n_restarts``. Square: ``steps`` is its query count.
    FGSM and AutoAttack take no ``steps``, and torchattacks' CW takes no ``eps`` (it is not bounded by it; ``eps`` is
    only recorded). ``options`` go to torchattacks. torchattacks' own random draws run under a forked RNG seeded with
    the attack's seed (per batch: those figures can move with the batch size).

    Args:
        method: ``pgd``, ``pgd-l2``, ``fgsm``, ``apgd``, ``cw``, ``square`` or ``autoattack`` (see ``METHODS``).
        eps: the budget, > 0 (default 8/255 for Linf methods, 0.5 for L2 ones).
        steps: the iterations (Square: queries).
        alpha: PGD's step size (default 2.5 * eps / steps).
        restarts: random starts (pgd, pgd-l2, apgd only).
        loss: ``ce``, or ``cw`` (the logit margin; pgd and pgd-l2 only).
        targeted: attack towards a target (not for apgd and autoattack, which are untargeted in torchattacks).
        options: further keywords of the torchattacks class (not for our PGD).
        **common: the options of every attack (``Attack``: ``target``, ``seed``, ``precision``,
            ``channels_last``, ``adaptive``).

    Raises:
        InputError: when an option is not valid, or not valid for ``method``.

    Shape:
        As ``Attack``: x N x 3 x H x W in [0, 1]; ``x_adv`` N x 3 x H x W in [0, 1], no boxes; ``extra`` records the
        ``method`` and ``eps``.

    Examples:
        >>> import torch
        >>> from robust.attacks.lp import LpAttack
        >>> from robust.models import load_model
        >>> LpAttack().alpha == 2.5 * (8 / 255) / 10, LpAttack(method="pgd-l2").eps
        (True, 0.5)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> result = LpAttack(eps=8 / 255, steps=5)(load_model("zoo:digits-m/resnet", "cpu"), x, torch.tensor([3, 5]))
        >>> float((result.x_adv - x).abs().max()) <= 8 / 255 + 1e-6, result.extra["method"]
        (True, 'pgd')
    """

    name = "lp"
    steps_param = "steps"  # the per-image budget a board's frontier varies
    description = "L_p-bounded attacks: PGD (restarts, per-image starts), FGSM, APGD, CW, Square, AutoAttack"

    def __init__(self, *, method: str = "pgd", eps: float | None = None, steps: int = 10, alpha: float | None = None,
                 restarts: int = 1, loss: str = "ce", targeted: bool = False, options: dict | None = None,
                 **common: object):
        super().__init__(**common)
        if method not in METHODS:
            raise InputError(f"method={method!r} is not valid; expected one of {sorted(METHODS)}.")
        cls_name, norm, can_target = METHODS[method]
        if targeted and not can_target:
            raise InputError(f"method={method!r} is untargeted in torchattacks; expected targeted=False "
                             f"(targeted methods: {sorted(m for m, v in METHODS.items() if v[2])}).")
        eps = (8 / 255 if norm == "Linf" else 0.5) if eps is None else eps
        eps = check_number(eps, "eps", low=0, low_open=True, expected="a positive, finite budget")
        check_positive_int(steps, "steps")
        check_positive_int(restarts, "restarts")
        if restarts > 1 and method not in ("pgd", "pgd-l2", "apgd"):
            raise InputError(f"restarts={restarts!r} is not valid for method={method!r}; expected 1 (restarts: pgd, "
                             "pgd-l2, apgd).")
        if loss not in ("ce", "cw"):
            raise InputError(f"loss={loss!r} is not valid; expected 'ce' or 'cw'.")
        if loss != "ce" and method not in ("pgd", "pgd-l2"):
            raise InputError(f"loss={loss!r} is not valid for method={method!r}; expected 'ce' (loss: pgd, pgd-l2).")
        alpha = 2.5 * eps / steps if alpha is None else check_number(alpha, "alpha", low=0, low_open=True,
                                                                      expected="a positive, finite step size")
        if not isinstance(targeted, bool):
            raise InputError(f"targeted={targeted!r} is not valid; expected true or false.")
        if options is not None and not isinstance(options, dict):
            raise InputError(f"options={options!r} is not valid; expected a table of torchattacks options.")
        if options and cls_name is None:
            raise InputError(f"options={options!r} is not valid for method={method!r}, which is robust's own PGD; "
                             "expected none.")
        self.method, self.norm, self.cls_name = method, norm, cls_name
        self.eps, self.steps, self.alpha = eps, steps, alpha
        self.restarts, self.loss, self.targeted = restarts, loss, targeted
        self.options = dict(options or {})

    def _make(self, net: nn.Module, num_classes: int) -> TorchAttack:
        import torchattacks

        cls = getattr(torchattacks, self.cls_name)
        kw = {"fgsm": {"eps": self.eps},
              "apgd": {"norm": "Linf", "eps": self.eps, "steps": self.steps, "n_restarts": self.restarts,
                       "seed": self.seed},
              "cw": {"steps": self.steps},
              "square": {"norm": "Linf", "eps": self.eps, "n_queries": self.steps, "seed": self.seed},
              "autoattack": {"norm": "Linf", "eps": self.eps, "n_classes": num_classes, "seed": self.seed}}[self.method]
        try:  # against the signature: a TypeError raised inside torchattacks is not the user's
            inspect.signature(cls).bind(net, **{**kw, **self.options})
        except TypeError as e:
            raise InputError(f"torchattacks.{self.cls_name} does not take the options {self.options}: {e}") from None
        return cls(net, **{**kw, **self.options})

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
            draws: Draws) -> AttackResult:
        extra = {"method": self.method, "eps": self.eps}
        if self.cls_name is None:
            x_adv = pgd(model, x, y, target, draws, norm=self.norm, eps=self.eps, alpha=self.alpha, steps=self.steps,
                        restarts=self.restarts, loss=self.loss)
            return AttackResult(x_adv, target, None, extra=extra)
        attack = self._make(_Logits(model), model.num_classes)
        if target is not None:
            attack.set_mode_targeted_by_function(lambda images, labels: target, quiet=True)
        devices = [x.device] if x.device.type == "cuda" else []
        with preserved_grads(model), torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(self.seed)
            x_adv = attack(x, y)
        return AttackResult(x_adv.detach(), target, None, extra=extra)


def _l2_unit(t: torch.Tensor) -> torch.Tensor:
    """Each image's ``t`` divided by its L2 norm."""
    return t / t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.ndim - 1)))


def _start(draws: Draws, stream: str, shape: tuple[int, ...], norm: str, eps: float) -> torch.Tensor:
    """Per-image random starts: uniform in the L_inf ball, or a Gaussian direction at a uniform radius in the L2
    ball (Box-Muller on the per-image uniforms)."""
    u = draws.uniform(stream, *shape)
    if norm == "Linf":
        return eps * (2 * u - 1)
    v = draws.uniform(stream + "/angle", *shape)
    z = torch.sqrt(-2 * torch.log1p(-u)) * torch.cos(2 * torch.pi * v)
    return _l2_unit(z) * eps * draws.uniform(stream + "/radius", *([1] * len(shape)))


def _project(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    if norm == "Linf":
        return delta.clamp(-eps, eps)
    scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1)
    return delta * scale.view(-1, *([1] * (delta.ndim - 1)))


def pgd_step(model: Backbone, xs: torch.Tensor, ys: torch.Tensor, ts: torch.Tensor | None, delta: torch.Tensor,
             active: torch.Tensor, *, norm: str, eps: float, alpha: float, loss: str, last: bool
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One PGD step on a batch, masked and without a host sync: each active image's iterate is scored and, unless
    adversarial already, moved by one projected step; an inactive (finished) image keeps its perturbation.

    Args:
        model: the victim.
        xs: the images.
        ys: their labels.
        ts: their targets (None: untargeted).
        delta: the perturbations.
        active: the images still being attacked.
        norm: ``Linf`` or ``L2``.
        eps: the ball's radius.
        alpha: the step size.
        loss: ``attack_loss``'s kind.
        last: the last step (score only: no update).

    Returns:
        (the iterates scored, which of them to record (an active image's first adversarial iterate, or its last),
        the next perturbations, the images still active).

    Shape:
        xs, delta: N x C x H x W; ys, ts, active: N; returns N x C x H x W, N, N x C x H x W, N.

    Examples:
        >>> import torch
        >>> from robust.attacks.lp import pgd_step
        >>> from robust.models import load_model
        >>> model, x = load_model("zoo:digits-m/resnet", "cpu"), torch.rand(2, 3, 32, 32)
        >>> _, record, delta, active = pgd_step(model, x, torch.tensor([0, 1]), None, torch.zeros_like(x),
        ...                                     torch.ones(2, dtype=torch.bool), norm="Linf", eps=8 / 255,
        ...                                     alpha=2 / 255, loss="ce", last=False)
        >>> float(delta.abs().max()) <= 8 / 255, record.dtype
        (True, torch.bool)
    """
    d = delta.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model.logits(xs + d)
        pred = logits.argmax(1)
        hit = pred == ts if ts is not None else pred != ys
        moving = active & ~hit
        value = (attack_loss(logits.float(), ys, ts, loss) * moving).sum()
        grad = None if last else torch.autograd.grad(value, d)[0]
    record = active & (hit | last)
    if last:
        return (xs + d).detach(), record, delta, moving
    with torch.no_grad():
        step = d - alpha * (grad.sign() if norm == "Linf" else _l2_unit(grad))
        moved = (xs + _project(step, norm, eps)).clamp(0, 1) - xs
        return (xs + d).detach(), record, torch.where(moving.view(-1, 1, 1, 1), moved, delta), moving


def pgd(model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, draws: Draws, *,
        norm: str, eps: float, alpha: float, steps: int, restarts: int, loss: str = "ce") -> torch.Tensor:
    """Projected gradient descent on ``attack_loss`` in the ``norm`` ball of radius ``eps`` (clipped to [0, 1]):
    ``restarts`` random starts of ``steps`` steps; each image stops at its first adversarial iterate. The steps are
    ``pgd_step``'s, sync-free; finished images leave the batch when ``compact_after`` says. Every draw is per
    image, so the result does not depend on the batch."""
    x_adv = x.detach().clone()
    todo = torch.arange(x.shape[0], device=x.device)  # images without an adversarial iterate yet
    for restart in range(restarts):
        if todo.numel() == 0:
            break
        sub = draws.subset(todo)
        xs, ys = x[todo], y[todo]
        ts = None if target is None else target[todo]
        delta = ((xs + _start(sub, f"pgd-start/{restart}", tuple(x.shape[1:]), norm, eps)).clamp(0, 1) - xs)
        rows, active = todo, torch.ones_like(todo, dtype=torch.bool)  # rows of x (and of xs, delta) in the batch
        for step in range(steps + 1):
            iterate, record, delta, active = pgd_step(
                model, xs, ys, ts, delta, active, norm=norm, eps=eps, alpha=alpha, loss=loss, last=step == steps)
            x_adv[rows] = torch.where(record.view(-1, 1, 1, 1), iterate, x_adv[rows])
            if step < steps and compact_after(step, x.device):  # drop the finished images: one host sync
                keep = active.nonzero()[:, 0]
                rows, xs, ys, delta, active = rows[keep], xs[keep], ys[keep], delta[keep], active[keep]
                ts = None if ts is None else ts[keep]
                if keep.numel() == 0:
                    break
        todo = rows[active]  # the images robust to this restart
    return x_adv
