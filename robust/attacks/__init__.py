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
    """Build an attack by its registered name or by a preset's name.

    Args:
        name: a registered attack (``lavan``, ``gan-patch``, ``pgd``...: ``robust presets list`` and the attacks
            guide list them) or an attack preset (``lavan-12pct``: a method with its parameters).
        **params: the attack's options, over the preset's. A preset's training recipe (its ``[train]`` table)
            becomes the attack's ``recipe``: ``fit``'s options where a call leaves them out.

    Returns:
        The attack, ready to call on a batch or to ``evaluate``.

    Raises:
        InputError: an unknown name or option, or a bad value; the message says what is valid.

    Examples:
        >>> from robust.attacks import make_attack
        >>> attack = make_attack("lavan-12pct", steps=5)
        >>> attack.name, attack.area, attack.steps, attack.placement
        ('lavan', 0.12, 5, 'gradcam')
    """
    from robust.presets import method_preset
    from robust.registry import get

    task = method_preset(name, "attack")
    if task is not None:
        name, params = task.method, {**task.params, **params}
    attack = get(name, "attack").make(**params)
    if task is not None and task.train:  # a trained attack's fit follows the preset's recipe unless told otherwise
        attack.recipe = dict(task.train)
    return attack


__all__ = ["Attack", "AttackResult", "GanPatch", "LaVAN", "LpAttack", "NaturalPatch", "NoisePatch", "PatchAttack",
           "TrainedPatchAttack", "UniversalPatch", "evaluate", "make_attack", "sample_targets", "transfer_matrix"]
