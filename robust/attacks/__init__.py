"""Attacks: ``make_attack(name, **params)`` or the classes directly; each is called as
``attack(model, x, y, target=None) -> AttackResult``."""

from __future__ import annotations

from robust.attacks.base import Attack, AttackResult, PatchAttack, sample_targets
from robust.attacks.controls import NaturalPatch, NoisePatch
from robust.attacks.evaluate import evaluate
from robust.attacks.gan import GanPatch
from robust.attacks.lavan import LaVAN
from robust.attacks.lp import LpAttack
from robust.attacks.transfer import transfer_matrix
from robust.attacks.universal import UniversalPatch

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls for cls in (NoisePatch, NaturalPatch, LaVAN, LpAttack, UniversalPatch, GanPatch)
}

#: attacks trained before use: ``fit`` then ``save``; ``load(path, **attack_time_options)``
TRAINED: dict[str, type[Attack]] = {cls.name: cls for cls in (UniversalPatch, GanPatch)}


def make_attack(name: str, **params: object) -> Attack:
    """The attack registered as ``name`` built with ``params`` (unknown names and parameters are errors)."""
    if name not in ATTACKS:
        raise ValueError(f"attack {name!r} is unknown; expected one of {sorted(ATTACKS)}.")
    try:
        return ATTACKS[name](**params)
    except TypeError as e:
        raise ValueError(f"attack {name!r} does not take the parameters {sorted(params)}: {e}") from None


__all__ = ["ATTACKS", "TRAINED", "Attack", "AttackResult", "GanPatch", "LaVAN", "LpAttack", "NaturalPatch",
           "NoisePatch", "PatchAttack", "UniversalPatch", "evaluate", "make_attack", "sample_targets",
           "transfer_matrix"]
