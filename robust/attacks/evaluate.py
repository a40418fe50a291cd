"""Score an attack on a dataset: ``evaluate(attack, model, data) -> Counts`` (mergeable, with Wilson intervals)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch.utils.data import Dataset

from robust.attacks.base import Attack, AttackResult
from robust.attacks.cost import Passes, counting
from robust.checks import InputTypeError, check_matches, check_positive_int, check_samples
from robust.data.base import iterate
from robust.draws import Pool
from robust.metrics import Counts, count
from robust.models.backbone import Backbone, as_backbone
from robust.models.state import eval_mode


def evaluate(attack: Attack, model: Backbone | torch.nn.Module, data: Dataset, *, samples: int | None = None,
             batch_size: int = 100,
             progress: Callable[[int], object] | None = None,
             inspect: Callable[[torch.Tensor, torch.Tensor, AttackResult], object] | None = None,
             outcomes: list | None = None, passes: Passes | None = None) -> Counts:
    """Attack ``data`` batch by batch and count clean accuracy, ASR and TCS.

    Each image's random draws depend on the attack's seed and the image's index in ``data``, and donors come from
    the whole of ``data``, so an image's outcome depends on neither ``batch_size`` nor ``samples``.

    Args:
        attack: the attack (``make_attack``).
        model: the victim: a ``Backbone``, or a plain ``nn.Module`` that takes the data's images as they are.
        data: a dataset of ``(x, y)`` items (``load_dataset``).
        samples: attack the first ``samples`` items (default: all).
        batch_size: images per batch.
        progress: called with the number of images done after each batch.
        inspect: called as ``inspect(x, y, result)`` on each batch and its ``AttackResult`` (to keep examples).
        outcomes: a list that receives each batch's ``(label, clean prediction, attacked prediction, target or
            None)`` as CPU tensors, to compare attacks image by image (a board's worst case).
        passes: a ``robust.attacks.cost.Passes`` that receives the victim passes the attack spent (not counting
            the scoring forwards): a board frontier's cost axis.

    Returns:
        The outcome counts (``Counts``), which merge with ``+``.

    Shape:
        ``inspect`` sees x as B x 3 x H x W in [0, 1], y as B; ``result.x_adv`` is B x 3 x H x W in [0, 1].

    Examples:
        >>> from robust import evaluate, load_dataset, load_model, make_attack
        >>> model, data = load_model("zoo:digits-m/resnet", "cpu"), load_dataset("digits-m")
        >>> counts = evaluate(make_attack("lavan-12pct", steps=5), model, data, samples=8)
        >>> counts.n, counts.clean_correct, 0.0 <= counts.tcs <= counts.asr <= 1.0
        (8, 7, True)
    """
    if not isinstance(attack, Attack):
        raise InputTypeError(f"attack must be a robust Attack (see make_attack), got {type(attack).__name__}.")
    check_positive_int(batch_size, "batch_size")
    model = as_backbone(model, data=data)  # a plain nn.Module takes the data's image size
    check_matches(model, data)
    check_samples(samples, data)
    total = Counts()
    pool, start = Pool(data), 0  # donors from the whole split: an image's draws never depend on ``samples``
    for x, y in iterate(data, batch_size, model.device, limit=samples):
        index = torch.arange(start, start + x.shape[0], device=model.device)
        start += x.shape[0]
        with counting(model, passes) if passes is not None else contextlib.nullcontext():
            res = attack(model, x, y, index=index, pool=pool)
        if passes is not None:
            passes.images += x.shape[0]
        if inspect is not None:
            inspect(x, y, res)
        with eval_mode(model), torch.no_grad():  # a model handed over in training mode is scored as deployed
            clean, adv = model(x), model(res.x_adv)
            total += count(clean, adv, y, res.target)
        if outcomes is not None:
            outcomes.append((y.cpu(), clean.argmax(1).cpu(), adv.argmax(1).cpu(),
                             None if res.target is None else res.target.cpu()))
        if progress is not None:
            progress(x.shape[0])
    return total
