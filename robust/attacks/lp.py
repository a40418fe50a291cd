"""L_p attacks from torchattacks behind the robust interface: FGSM, PGD (Linf, L2), APGD, CW, Square, AutoAttack.

The Backbone normalises inside, so torchattacks sees [0,1] images; targets come from the base class's one
vectorised draw (``set_mode_targeted_by_function``), not torchattacks' per-sample loop; torchattacks' own
random draws (random starts, Square's sampling) run under a forked RNG seeded with the attack's seed, so
results repeat and the caller's global RNG is untouched; parameters' ``.grad`` are restored afterwards.
"""

from __future__ import annotations

import torch
from torch import nn

from robust.attacks.base import Attack, AttackResult
from robust.checks import check_number, check_positive_int
from robust.models.backbone import Backbone
from robust.models.state import preserved_grads
from robust.registry import register_attack

#: method -> (torchattacks class, norm, supports our targets)
METHODS = {
    "fgsm": ("FGSM", "Linf", True), "pgd": ("PGD", "Linf", True), "pgd-l2": ("PGDL2", "L2", True),
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
    """``method`` with budget ``eps`` (Linf: 8/255 by default; L2 methods: 0.5), ``steps`` iterations and step
    ``alpha`` (default eps / 4); ``targeted`` where torchattacks supports it. ``options`` go to torchattacks."""

    name = "lp"
    description = "L_p-bounded attacks from torchattacks (FGSM, PGD, APGD, CW, Square, AutoAttack)"

    def __init__(self, *, method: str = "pgd", eps: float | None = None, steps: int = 10, alpha: float | None = None,
                 targeted: bool = False, options: dict | None = None, **common: object):
        super().__init__(**common)
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not valid; expected one of {sorted(METHODS)}.")
        cls_name, norm, can_target = METHODS[method]
        if targeted and not can_target:
            raise ValueError(f"method={method!r} is untargeted in torchattacks; expected targeted=False "
                             f"(targeted methods: {sorted(m for m, v in METHODS.items() if v[2])}).")
        eps = (8 / 255 if norm == "Linf" else 0.5) if eps is None else eps
        eps = check_number(eps, "eps", low=0, low_open=True, expected="a positive, finite budget")
        check_positive_int(steps, "steps")
        if alpha is not None:
            alpha = check_number(alpha, "alpha", low=0, low_open=True, expected="a positive, finite step size")
        if not isinstance(targeted, bool):
            raise ValueError(f"targeted={targeted!r} is not valid; expected true or false.")
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options={options!r} is not valid; expected a table of torchattacks options.")
        self.method, self.norm, self.cls_name = method, norm, cls_name
        self.eps, self.steps = eps, steps
        self.alpha = alpha if alpha is not None else self.eps / 4
        self.targeted = targeted
        self.options = dict(options or {})

    def _make(self, net: nn.Module, num_classes: int):
        import torchattacks

        cls = getattr(torchattacks, self.cls_name)
        kw = {"fgsm": {"eps": self.eps},
              "pgd": {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "random_start": True},
              "pgd-l2": {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "random_start": True},
              "apgd": {"norm": "Linf", "eps": self.eps, "steps": self.steps, "seed": self.seed},
              "cw": {"steps": self.steps},
              "square": {"norm": "Linf", "eps": self.eps, "n_queries": self.steps, "seed": self.seed},
              "autoattack": {"norm": "Linf", "eps": self.eps, "n_classes": num_classes, "seed": self.seed},
              }[self.method]
        try:
            return cls(net, **{**kw, **self.options})
        except TypeError as e:
            raise ValueError(f"torchattacks.{self.cls_name} does not take the options {self.options}: {e}") from None

    def run(self, model: Backbone, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> AttackResult:
        net = _Logits(model)
        attack = self._make(net, model.num_classes)
        if target is not None:
            attack.set_mode_targeted_by_function(lambda images, labels: target, quiet=True)
        devices = [x.device] if x.device.type == "cuda" else []
        with preserved_grads(model), torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(self.seed)
            x_adv = attack(x, y)
        return AttackResult(x_adv.detach(), target, None, extra={"method": self.method, "eps": self.eps})
