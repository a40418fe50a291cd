"""Counts and rates with their intervals (grows into ASR / TCS in the attacks issue)."""

from __future__ import annotations

import math

import torch

from robust.checks import check_labels
from robust.data.base import ImageSet
from robust.models.backbone import Backbone
from robust.models.state import eval_mode


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval (95 % by default) of a binomial proportion; (0, 1) when n == 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"successes={successes!r}, n={n!r} are not valid; expected 0 <= successes <= n.")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 or k = n the bound is exactly 0 or 1; float rounding would otherwise leave it a hair inside.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


@torch.no_grad()
def clean_accuracy(model: Backbone, data: ImageSet, batch_size: int = 500, limit: int | None = None) -> dict:
    """Top-1 accuracy of ``model`` on an in-memory ``ImageSet``: ``n``, ``correct``, ``accuracy``, ``interval``."""
    if not isinstance(model, Backbone):
        raise TypeError(f"model must be a robust Backbone (see load_model), got {type(model).__name__}.")
    if not isinstance(data, ImageSet):
        raise TypeError(f"data must be an in-memory ImageSet (e.g. load_dataset('digits-m')), "
                        f"got {type(data).__name__}.")
    if data.num_classes != model.num_classes:
        raise ValueError(f"data {data.name!r} has {data.num_classes} classes but model {model.name!r} has "
                         f"{model.num_classes}.")
    correct = torch.zeros((), dtype=torch.long, device=model.device)
    n = 0
    with eval_mode(model):
        for x, y in data.batches(batch_size, model.device, limit=limit):
            check_labels(y, model.num_classes, n=x.shape[0])
            correct += (model(x).argmax(1) == y).sum()
            n += x.shape[0]
    k = int(correct)
    return {"n": n, "correct": k, "accuracy": k / n if n else float("nan"), "interval": wilson_interval(k, n)}
