"""Transfer ("black-box") evaluation: craft on a source model, score on every target model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from robust.attacks.base import Attack, sample_targets
from robust.checks import InputError, check_positive_int
from robust.draws import Draws, Pool
from robust.metrics import Counts, count
from robust.models.backbone import Backbone
from robust.models.state import eval_mode


def transfer_matrix(attack: Attack | Callable[[Backbone], Attack], sources: Sequence[Backbone],
                    targets: Sequence[Backbone], x: torch.Tensor, y: torch.Tensor,
                    batch_size: int = 256) -> dict[tuple[str, str], Counts]:
    """Transfer ("black-box") counts for every (source, target) pair: craft on a source model, score on each target.

    Adversarial images are crafted once per source (placement and gradients from the source only) and classified by
    each target. The targets of a targeted attack are drawn once (by the first attack's seed and target mode, against
    the first source for ``least-likely``) and shared by every pair, so the cells compare like with like. The images
    are the donor pool of attacks that need one (``natural-patch``).

    Args:
        attack: an attack, or a function of the source returning one (for attacks trained per source, such as
            universal or GAN patches).
        sources: the models the attack is crafted on.
        targets: the models that classify the adversarial images.
        x: the images.
        y: their labels.
        batch_size: the images attacked at once.

    Returns:
        ``Counts`` per (source name, target name).

    Raises:
        InputError: when ``sources`` or ``targets`` is empty, the models' class counts differ, or ``batch_size`` is
            not a positive integer.

    Shape:
        x: N x 3 x H x W in [0, 1]; y: N (class indices).

    Examples:
        >>> from robust.attacks import make_attack
        >>> from robust.attacks.transfer import transfer_matrix
        >>> from robust.data import load_dataset
        >>> from robust.models import load_model
        >>> resnet, vit = load_model("zoo:digits-m/resnet", "cpu"), load_model("zoo:digits-m/vit", "cpu")
        >>> x, y = load_dataset("digits-m").batch(slice(0, 8))
        >>> cells = transfer_matrix(make_attack("noise-patch-12pct", placement="center"), [resnet], [resnet, vit], x, y)
        >>> sorted(cells), cells["zoo:digits-m/resnet", "zoo:digits-m/vit"].n
        ([('zoo:digits-m/resnet', 'zoo:digits-m/resnet'), ('zoo:digits-m/resnet', 'zoo:digits-m/vit')], 8)
    """
    if not sources or not targets:
        raise InputError("sources and targets must each name at least one model.")
    classes = {m.num_classes for m in [*sources, *targets]}
    if len(classes) != 1:
        raise InputError(f"every model must have the same classes; got class counts {sorted(classes)}.")
    check_positive_int(batch_size, "batch_size")
    k = classes.pop()
    attacks = [attack if isinstance(attack, Attack) else attack(source) for source in sources]
    goal = None
    if attacks[0].targeted:  # one draw for the whole set, shared by every pair
        with torch.no_grad(), eval_mode(sources[0]):
            logits = (sources[0].logits(x.to(sources[0].device)).to(y.device)
                      if attacks[0].target_mode == "least-likely" else None)
        goal = sample_targets(y, k, attacks[0].target_mode, Draws.of_batch(attacks[0].seed, x, y), logits)
    out: dict[tuple[str, str], Counts] = {}
    pool, index = Pool((x, y)), torch.arange(x.shape[0])
    for source, atk in zip(sources, attacks, strict=True):
        cells = {t.name: Counts() for t in targets}
        for start in range(0, x.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            res = atk(source, x[sl], y[sl], None if goal is None else goal[sl], index=index[sl], pool=pool)
            with torch.no_grad():
                for t in targets:
                    tgt = None if res.target is None else res.target.to(t.device)
                    cells[t.name] += count(t(x[sl].to(t.device)), t(res.x_adv.to(t.device)), y[sl].to(t.device), tgt)
        out.update({(source.name, name): c for name, c in cells.items()})
    return out
