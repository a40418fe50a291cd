"""How natural a pasted patch looks: per-image measures against what it replaced and what surrounds it, and how
well a small detector tells attacked windows from clean ones.

Per image (``window_measures``), on the patch's box:
- ``ssim`` and ``psnr``: the patched window against the clean window it replaced (higher: closer to what was there);
- ``tv``: the patched window's total variation (lower: smoother);
- ``hist``: the colour-histogram distance between the patched window and the clean ring of context around it (the
  square of twice the window's side that the generator sees, less the window): the total-variation distance of the
  two 16-bin histograms, averaged over channels, in [0, 1] (lower: its colours match its surroundings).

Over a set (``detector_auc``): a small CNN (global max pooling, so the window's position does not matter) is trained,
seeded, on the context squares of half of the images, clean (label 0) and attacked (label 1), and scored by its ROC
AUC on the other half. 0.5: it cannot tell them apart (natural); 1: every attacked square is recognised. The
interval is Hanley and McNeil's (1982) normal approximation.

``Realism`` accumulates batches (only the crops the detector needs are kept, squares wider than 48 px downsampled
to 48) and ``summary`` gives each measure's mean with its 95 % interval and the detector's AUC; ``pool`` merges
the summaries of several seeds.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from robust.checks import InputError, check_number, check_positive_int, check_seed
from robust.device import one_cpu_thread
from robust.draws import seeded
from robust.placement import context_boxes, crop, paste

MEASURES = ("ssim", "psnr", "tv", "hist")
BINS = 16
DETECTOR_SIDE = 48  # context squares wider than this are area-downsampled for the detector
_Z = 1.959963984540054


def total_variation(patch: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of each N x C x p x p patch (anisotropic TV)."""
    if patch.ndim != 4:
        raise InputError(f"patch has shape {tuple(patch.shape)}; expected N x C x p x p.")
    dh = (patch[..., 1:, :] - patch[..., :-1, :]).abs().mean((1, 2, 3))
    dw = (patch[..., :, 1:] - patch[..., :, :-1]).abs().mean((1, 2, 3))
    return dh + dw


def colour_histograms(x: torch.Tensor, weight: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """N x C x ``bins`` normalised histograms of the values in [0, 1] of N x C x H x W images, each pixel counted
    with its ``weight`` (N x 1 x H x W), in one batched scatter."""
    n, c = x.shape[:2]
    idx = (x.float().clamp(0, 1) * bins).long().clamp_max(bins - 1).flatten(2)
    hist = x.new_zeros(n, c, bins, dtype=torch.float32)
    hist.scatter_add_(2, idx, weight.float().expand(n, c, *weight.shape[-2:]).flatten(2))
    return hist / hist.sum(-1, keepdim=True).clamp_min(1e-12)


def _check(x: torch.Tensor, x_adv: torch.Tensor, boxes: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise InputError(f"x has shape {tuple(getattr(x, 'shape', ()))}; expected N x C x H x W.")
    if not isinstance(x_adv, torch.Tensor) or x.shape != x_adv.shape:
        raise InputError(f"x_adv has shape {tuple(getattr(x_adv, 'shape', ()))}; expected {tuple(x.shape)} like x.")
    if not isinstance(boxes, torch.Tensor) or boxes.shape != (x.shape[0], 4):
        raise InputError(f"boxes has shape {tuple(getattr(boxes, 'shape', ()))}; expected ({x.shape[0]}, 4).")


def window_measures(x: torch.Tensor, x_adv: torch.Tensor, boxes: torch.Tensor, window: int = 5
                    ) -> dict[str, torch.Tensor]:
    """Per-image ``ssim``, ``psnr``, ``tv`` and ``hist`` (see the module docstring) of the patches pasted into
    ``x_adv`` at ``boxes`` (N x 4, one side), ``x`` being the clean images. ``window``: SSIM's Gaussian window
    (odd, at most the patch's side). PSNR is capped at 100 dB (an unchanged window)."""
    import kornia.metrics as KM

    _check(x, x_adv, boxes)
    boxes = boxes.to(x.device)
    before, after = crop(x, boxes).float(), crop(x_adv, boxes).float()
    p = before.shape[-1]
    ssim = KM.ssim(after, before, min(window | 1, p if p % 2 else p - 1)).mean((1, 2, 3))
    mse = (after - before).pow(2).mean((1, 2, 3))
    psnr = 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
    ctx_boxes, inner = context_boxes(boxes, tuple(x.shape[-2:]))
    ctx = crop(x_adv, ctx_boxes).float()
    inside = paste(ctx.new_zeros(len(ctx), 1, *ctx.shape[-2:]), ctx.new_ones(1, p, p), inner)  # the window
    hist = 0.5 * (colour_histograms(ctx, inside) - colour_histograms(ctx, 1 - inside)).abs().sum(-1).mean(1)
    return {"ssim": ssim, "psnr": psnr, "tv": total_variation(after), "hist": hist}


def context_squares(x: torch.Tensor, boxes: torch.Tensor, side: int = DETECTOR_SIDE) -> torch.Tensor:
    """The context square around each box (what the detector sees), area-downsampled to ``side`` when wider."""
    ctx_boxes, _ = context_boxes(boxes.to(x.device), tuple(x.shape[-2:]))
    ctx = crop(x, ctx_boxes).float()
    return F.interpolate(ctx, size=(side, side), mode="area") if ctx.shape[-1] > side else ctx


class _Detector(nn.Sequential):
    """Two convolutions (the first strided), global max pooling, a linear score: small enough to train in about a
    second on a CPU for every patch-attack cell of a board."""

    def __init__(self, channels: int):
        super().__init__(nn.Conv2d(channels, 16, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, 1))


def roc_auc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """ROC AUC of ``scores`` for the ``positive`` (bool) samples: the Mann-Whitney statistic from average ranks
    (ties count a half), O(n log n)."""
    order = scores.argsort()
    _, group, counts = torch.unique_consecutive(scores[order], return_inverse=True, return_counts=True)
    average = counts.cumsum(0).double() - (counts.double() - 1) / 2  # the 1-based mean rank of each tie group
    ranks = torch.empty(len(scores), dtype=torch.float64, device=scores.device)
    ranks[order] = average[group]
    n_pos = int(positive.sum())
    n_neg = len(scores) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hanley_mcneil(auc: float, positives: int, negatives: int) -> float:
    """Standard error of an ROC AUC (Hanley and McNeil, 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) \
        / (positives * negatives)
    return math.sqrt(max(var, 0.0))


def _check_squares(clean: torch.Tensor, attacked: torch.Tensor, what: str) -> None:
    if not isinstance(clean, torch.Tensor) or not isinstance(attacked, torch.Tensor) or clean.shape != attacked.shape \
            or clean.ndim != 4:
        raise InputError(f"{what}: clean {tuple(getattr(clean, 'shape', ()))} and attacked "
                         f"{tuple(getattr(attacked, 'shape', ()))} are not valid; expected two N x C x s x s tensors "
                         "of one shape.")


def _squares(clean: torch.Tensor, attacked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The detector's input (values in [-1, 1]) and labels: clean squares 0, attacked ones 1."""
    x = torch.cat([clean, attacked]).float()
    x = x / 255 if clean.dtype == torch.uint8 else x
    return x * 2 - 1, torch.cat([torch.zeros(len(clean)), torch.ones(len(attacked))]).to(clean.device)


def train_detector(clean: torch.Tensor, attacked: torch.Tensor, *, seed: int = 0, steps: int = 80,
                   lr: float = 3e-3) -> nn.Module:
    """The small CNN (seeded by ``seed``) trained with ``steps`` full-batch Adam steps to tell ``attacked`` context
    squares from ``clean`` ones (N x C x s x s each, in [0, 1] or uint8), on one CPU thread (``one_cpu_thread``: the
    same detector whatever the thread count)."""
    check_seed(seed)
    check_positive_int(steps, "steps")
    check_number(lr, "lr", low=0, low_open=True, expected="a positive, finite number")
    _check_squares(clean, attacked, "train_detector")
    net = seeded(lambda: _Detector(clean.shape[1]), seed).to(clean.device)
    params = list(net.parameters())
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    x, y = _squares(clean, attacked)
    with one_cpu_thread():
        for step in range(1, steps + 1):  # Adam (default betas, L2 weight decay 1e-4), written out: torch.optim's
            with torch.enable_grad():  # first use imports torch._dynamo, 1.4 s in every process that scores a patch
                grads = torch.autograd.grad(F.binary_cross_entropy_with_logits(net(x).squeeze(1), y), params)
            with torch.no_grad():
                for p, g, (m, v) in zip(params, grads, moments, strict=True):
                    g = g + 1e-4 * p
                    m.mul_(0.9).add_(g, alpha=0.1)
                    v.mul_(0.999).addcmul_(g, g, value=0.001)
                    p.sub_(lr * (m / (1 - 0.9 ** step)) / ((v / (1 - 0.999 ** step)).sqrt() + 1e-8))
    return net


def score_detector(net: nn.Module, clean: torch.Tensor, attacked: torch.Tensor) -> dict:
    """A trained detector's ROC AUC on ``clean`` and ``attacked`` squares, with its 95 % interval (Hanley-McNeil),
    the standard error and the number of squares on each side (``test``)."""
    _check_squares(clean, attacked, "score_detector")
    x, y = _squares(clean, attacked)
    with torch.no_grad(), one_cpu_thread():
        scores = net(x).squeeze(1)
    auc = roc_auc(scores, y.bool())
    return _auc_summary(auc, hanley_mcneil(auc, len(clean), len(clean)), test=len(clean))


def halves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The seeded split of ``n`` images into the detector's training half and its test half (image indices)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: n // 2], order[n // 2:]


def detector_auc(clean: torch.Tensor, attacked: torch.Tensor, *, seed: int = 0, steps: int = 80,
                 lr: float = 3e-3) -> dict:
    """Train a small CNN (seeded by ``seed``: its initialisation and the split) on half of the images to tell the
    ``attacked`` context squares from the ``clean`` ones (both N x C x s x s, image i in row i) with ``steps``
    full-batch Adam steps; return its ROC AUC on the other half with its 95 % interval, the standard error and the
    number of images on each side. Images, not windows, are split, so an image's two squares stay together."""
    _check_squares(clean, attacked, "detector_auc")
    n = clean.shape[0]
    if n < 4:
        raise InputError(f"{n} images are too few to train and test a detector; expected at least 4.")
    train, test = (i.to(clean.device) for i in halves(n, seed))
    net = train_detector(clean[train], attacked[train], seed=seed, steps=steps, lr=lr)
    return {**score_detector(net, clean[test], attacked[test]), "train": len(train)}


def heldout_auc(own: tuple[torch.Tensor, torch.Tensor], others: list[tuple[torch.Tensor, torch.Tensor]], *,
                seed: int = 0, steps: int = 80) -> dict:
    """The held-out detector (protocols section 7: a defender does not know the attack): trained on the training
    half of the images with the *other* attacks' squares, scored on the test half with ``own``'s. ``own`` and each
    of ``others`` are (clean, attacked) squares of the same N images (row i: image i). Training image i takes its
    squares from other attack i mod len(others), so the training set has one clean and one attacked square per
    image, as ``detector_auc``'s does, drawn from every other attack.

    Example::

        heldout_auc((clean, gan_squares), [(clean, lavan_squares), (clean, noise_squares)], seed=0)["auc"]
    """
    if not others:
        raise InputError("heldout_auc needs the squares of at least one other attack; got none.")
    for pair in (own, *others):
        _check_squares(*pair, "heldout_auc")
        if pair[0].shape != own[0].shape:
            raise InputError(f"heldout_auc: squares {tuple(pair[0].shape)} and {tuple(own[0].shape)} differ; expected "
                             "the same images at the same patch area.")
    n = own[0].shape[0]
    if n < 4:
        raise InputError(f"{n} images are too few to train and test a detector; expected at least 4.")
    train, test = halves(n, seed)
    source = train % len(others)  # one gather over the attacks stacked: K x N x C x s x s
    clean = torch.stack([c for c, _ in others])[source, train]
    attacked = torch.stack([a for _, a in others])[source, train]
    net = train_detector(clean, attacked, seed=seed, steps=steps)
    return {**score_detector(net, own[0][test], own[1][test]), "train": len(train), "attacks": len(others)}


def _auc_summary(auc: float, se: float, **extra: int) -> dict:
    return {"auc": auc, "interval": [max(0.0, auc - _Z * se), min(1.0, auc + _Z * se)], "se": se, **extra}


UNDEFINED = {"tv": "total variation needs a patch of at least 2 x 2 pixels"}  # why a measure can have no value


def _mean_summary(n: int, mean: float, sd: float) -> dict:
    """A mean with its 95 % interval (normal approximation)."""
    half = _Z * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "interval": [mean - half, mean + half]}


def _undefined(n: int, measure: str, missing: int) -> dict:
    """A measure some images have no value of: no mean, and the reason (never a NaN in a board)."""
    why = UNDEFINED.get(measure, "not a finite number")
    return {"n": n, "mean": None, "sd": None, "interval": None,
            "undefined": f"{measure} is undefined for {missing} of {n} images ({why})"}


class Realism:
    """Accumulates ``window_measures`` and the detector's crops over batches; ``summary`` reports them."""

    def __init__(self) -> None:
        self.values: dict[str, list[torch.Tensor]] = {m: [] for m in MEASURES}
        self.clean: list[torch.Tensor] = []
        self.attacked: list[torch.Tensor] = []

    def update(self, x: torch.Tensor, x_adv: torch.Tensor, boxes: torch.Tensor) -> None:
        with torch.no_grad():
            for k, v in window_measures(x, x_adv, boxes).items():
                self.values[k].append(v.cpu())
            self.clean.append(context_squares(x, boxes).cpu())
            self.attacked.append(context_squares(x_adv, boxes).cpu())

    def __len__(self) -> int:
        return sum(len(v) for v in self.values["ssim"])

    def squares(self) -> dict[str, torch.Tensor]:
        """The detector's crops of every image so far, ``clean`` and ``attacked`` (N x C x s x s, uint8): what a
        board keeps to train held-out detectors (``heldout_auc``) across its cells."""
        return {k: (torch.cat(v) * 255).round().to(torch.uint8) for k, v in (("clean", self.clean),
                                                                             ("attacked", self.attacked))}

    def summary(self, seed: int = 0) -> dict:
        """Each measure's ``n``, ``mean``, ``sd`` and 95 % ``interval`` (normal approximation of a mean; all None,
        with the reason in ``undefined``, when some image has no value, e.g. the TV of a 1 x 1 patch), and
        ``detector_auc`` (``detector_auc``'s dict, seeded by ``seed``; None with under 4 images)."""
        out: dict = {}
        for m, parts in self.values.items():
            v = torch.cat(parts).double()
            missing = int((~v.isfinite()).sum())
            out[m] = _undefined(v.numel(), m, missing) if missing else \
                _mean_summary(v.numel(), float(v.mean()), float(v.std()) if v.numel() > 1 else 0.0)
        out["detector_auc"] = (detector_auc(torch.cat(self.clean), torch.cat(self.attacked), seed=seed)
                               if len(self) >= 4 else None)
        return out


def pool(summaries: list[dict]) -> dict:
    """One summary from those of several seeds (the same images): each measure's mean and sd over all the values,
    and the detector's mean AUC with the mean of the seeds' standard errors (they are not independent)."""
    if not summaries:
        raise InputError("summaries is empty; expected the summary of at least one seed (Realism.summary()).")
    if len(summaries) == 1:
        return summaries[0]
    out: dict = {}
    for m in MEASURES:
        parts = [s[m] for s in summaries]
        n = sum(p["n"] for p in parts)
        if undefined := next((p for p in parts if p["mean"] is None), None):
            out[m] = {**undefined, "n": n}
            continue
        mean = sum(p["n"] * p["mean"] for p in parts) / n
        ss = sum((p["n"] - 1) * p["sd"] ** 2 + p["n"] * (p["mean"] - mean) ** 2 for p in parts)
        out[m] = _mean_summary(n, mean, math.sqrt(ss / (n - 1)) if n > 1 else 0.0)
    out["detector_auc"] = pool_aucs([s["detector_auc"] for s in summaries if s.get("detector_auc")])
    return out


def pool_aucs(aucs: list[dict]) -> dict | None:
    """One AUC summary from several seeds' (the same images): the mean AUC with the mean of their standard errors
    (they are not independent); None for none."""
    if not aucs:
        return None
    extra = {k: aucs[0][k] for k in ("train", "test", "attacks") if k in aucs[0]}
    return _auc_summary(sum(a["auc"] for a in aucs) / len(aucs), sum(a["se"] for a in aucs) / len(aucs), **extra,
                        seeds=len(aucs))


__all__ = ["MEASURES", "Realism", "colour_histograms", "context_squares", "detector_auc", "halves", "heldout_auc",
           "pool", "pool_aucs", "roc_auc", "score_detector", "total_variation", "train_detector", "window_measures"]
