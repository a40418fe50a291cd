"""Attacks: ``make_attack(name, **params)`` or the classes directly; each is called as
``attack(model, x, y, target=None) -> AttackResult``. Each class registers itself in ``robust.registry``;
trained ones derive from ``TrainedPatchAttack`` (``fit`` then ``save``; ``load(path, **attack_time_options)``)."""

from __future__ import annotations

from robust.attacks.base import Attack, AttackResult, PatchAttack, sample_targets
from robust.attacks.controls import NaturalPatch, NoisePatch
from robust.attacks.evaluate import evaluate
from robust.attacks.gan import GanPatch
from robust.attacks.lavan import LaVAN
from robust.attacks.lp import LpAttack
from robust.attacks.trained import TrainedPatchAttack
from robust.attacks.transfer import transfer_matrix
from robust.attacks.universal import UniversalPatch


def make_attack(name: str, **params: object) -> Attack:
    """The attack registered as ``name`` built with ``params`` (unknown names and parameters are errors)."""
    from robust.registry import get

    cls = get(name, "attack").build
    try:
        return cls(**params)
    except TypeError as e:
        raise ValueError(f"attack {name!r} does not take the parameters {sorted(params)}: {e}") from None


__all__ = ["Attack", "AttackResult", "GanPatch", "LaVAN", "LpAttack", "NaturalPatch", "NoisePatch", "PatchAttack",
           "TrainedPatchAttack", "UniversalPatch", "evaluate", "make_attack", "sample_targets", "transfer_matrix"]
