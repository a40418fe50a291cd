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
    """The anisotropic total variation of each patch: how much neighbouring pixels differ (lower: smoother).

    The mean absolute difference between vertical neighbours plus that between horizontal neighbours, each averaged
    over channels and pixels. A patch narrower than 2 pixels has no neighbours: its TV is NaN.

    Args:
        patch: the patches.

    Returns:
        One TV per patch (in [0, 2] for values in [0, 1]).

    Raises:
        InputError: ``patch`` is not 4-D.

    Shape:
        patch: N x C x p x p; returns N.

    Examples:
        >>> import torch
        >>> from robust.realism import total_variation
        >>> stripes = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # columns differ, rows do not
        >>> total_variation(stripes)
        tensor([1.])
    """
    if patch.ndim != 4:
        raise InputError(f"patch has shape {tuple(patch.shape)}; expected N x C x p x p.")
    dh = (patch[..., 1:, :] - patch[..., :-1, :]).abs().mean((1, 2, 3))
    dw = (patch[..., :, 1:] - patch[..., :, :-1]).abs().mean((1, 2, 3))
    return dh + dw


def colour_histograms(x: torch.Tensor, weight: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """Normalised colour histograms of images, each pixel counted with a weight, in one batched scatter.

    The values are clamped to [0, 1] and counted in ``bins`` equal bins (1.0 falls in the last). Each channel's
    histogram sums to 1 (all zeros where every weight is 0). With a 0/1 ``weight`` it is the histogram of a region.

    Args:
        x: the images.
        weight: each pixel's weight (e.g. 1 inside a region, 0 outside).
        bins: the number of bins.

    Returns:
        One histogram per image and channel.

    Shape:
        x: N x C x H x W in [0, 1]; weight: N x 1 x H x W (or 1 x 1 x H x W); returns N x C x ``bins``.

    Examples:
        >>> import torch
        >>> from robust.realism import colour_histograms
        >>> x = torch.tensor([[[[0.0, 0.1], [0.6, 0.99]]]])
        >>> colour_histograms(x, torch.ones(1, 1, 2, 2), bins=4)
        tensor([[[0.5000, 0.0000, 0.2500, 0.2500]]])
        >>> colour_histograms(x, torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]]), bins=4)  # the top row only
        tensor([[[1., 0., 0., 0.]]])
    """
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
    """Per-image ``ssim``, ``psnr``, ``tv`` and ``hist`` of the patches pasted into ``x_adv`` at ``boxes``.

    ``ssim`` and ``psnr`` compare the patched window with the clean window it replaced (higher: closer; PSNR is
    capped at 100 dB, an unchanged window); ``tv`` is the patched window's total variation (lower: smoother);
    ``hist`` is the total-variation distance between the 16-bin colour histograms of the patched window and of the
    ring of context around it (the square of twice the window's side, less the window), averaged over channels, in
    [0, 1] (lower: its colours match its surroundings). See the module docstring.

    Args:
        x: the clean images.
        x_adv: the same images with the patches pasted.
        boxes: each patch's box (top, left, height, width in pixels; one side p for all).
        window: the side of SSIM's Gaussian window, made odd (``window | 1``) and at most the patch's side.

    Returns:
        ``{"ssim", "psnr", "tv", "hist"}``: one value per image each (float32).

    Raises:
        InputError: ``x`` not 4-D, ``x_adv`` not of its shape, or ``boxes`` not N x 4.

    Shape:
        x, x_adv: N x C x H x W in [0, 1]; boxes: N x 4 (integers); returns four tensors of N.

    Examples:
        >>> import torch
        >>> from robust.placement import paste
        >>> from robust.realism import window_measures
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> boxes = torch.tensor([[4, 4, 4, 4], [8, 2, 4, 4]])
        >>> x_adv = x.clone()
        >>> x_adv[:1] = paste(x[:1], torch.ones(3, 4, 4), boxes[:1])  # a white patch on image 0; image 1 unchanged
        >>> {k: [round(float(v), 2) for v in values] for k, values in window_measures(x, x_adv, boxes).items()}
        {'ssim': [0.02, 1.0], 'psnr': [5.01, 100.0], 'tv': [0.0, 0.82], 'hist': [0.92, 0.52]}
    """
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
    """The context square around each box: what the detector sees, area-downsampled to ``side`` when wider.

    The square has twice the box's side (at most the image's), centred on the box and shifted to stay inside the
    image (``robust.placement.context_boxes``).

    Args:
        x: the images.
        boxes: the patches' boxes (top, left, height, width in pixels; one side p for all).
        side: the widest square kept; wider ones are downsampled to it.

    Returns:
        The squares, as float.

    Shape:
        x: N x C x H x W; boxes: N x 4 (integers); returns N x C x s x s, s = min(2 p, H, W, ``side``).

    Examples:
        >>> import torch
        >>> from robust.realism import context_squares
        >>> context_squares(torch.rand(2, 3, 16, 16), torch.tensor([[4, 4, 4, 4], [0, 12, 4, 4]])).shape
        torch.Size([2, 3, 8, 8])
        >>> context_squares(torch.rand(1, 3, 224, 224), torch.tensor([[0, 0, 40, 40]])).shape  # 80 px, downsampled
        torch.Size([1, 3, 48, 48])
    """
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
    """The ROC AUC of ``scores`` for the ``positive`` samples: the probability that a positive outscores a negative.

    Computed as the Mann-Whitney statistic from average ranks (ties count a half), in O(n log n). NaN when either
    side has no sample.

    Args:
        scores: each sample's score (higher: more likely positive).
        positive: which samples are positive (a bool mask).

    Returns:
        The AUC in [0, 1]: 0.5 for scores that tell nothing apart, 1 when every positive outscores every negative.

    Shape:
        scores: n; positive: n (bool).

    Examples:
        >>> import torch
        >>> from robust.realism import roc_auc
        >>> roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([False, False, True, True]))
        0.75
        >>> roc_auc(torch.tensor([0.1, 0.5, 0.5, 0.9]), torch.tensor([False, True, False, True]))  # a tie: a half
        0.875
    """
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
    """Train the small detector CNN to tell ``attacked`` context squares from ``clean`` ones.

    The CNN (two convolutions, the first strided, global max pooling and a linear score, so the window's position
    does not matter) is initialised from ``seed`` and trained with ``steps`` full-batch Adam steps (default betas,
    L2 weight decay 1e-4) on the binary cross-entropy of clean (label 0) against attacked (label 1), on one CPU
    thread (``one_cpu_thread``: the same detector whatever the thread count).

    Args:
        clean: the clean squares, in [0, 1] or uint8.
        attacked: the attacked squares, as many, of the same shape and kind.
        seed: the seed of the initialisation.
        steps: the Adam steps.
        lr: the learning rate.

    Returns:
        The trained detector: it takes squares mapped to [-1, 1] (2 x - 1) and returns one logit per square (higher:
        attacked); ``score_detector`` scores it.

    Raises:
        InputError: a bad ``seed``, ``steps`` or ``lr``, or squares that are not two N x C x s x s tensors of one shape.

    Shape:
        clean, attacked: N x C x s x s; the detector takes M x C x s x s and returns M x 1.

    Examples:
        >>> import torch
        >>> from robust.realism import train_detector
        >>> clean = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> attacked = clean.clone()
        >>> attacked[:, :, 2:6, 2:6] = 1.0
        >>> net = train_detector(clean, attacked, seed=0, steps=20)
        >>> net(torch.rand(2, 3, 8, 8) * 2 - 1).shape
        torch.Size([2, 1])
    """
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
    """A trained detector's ROC AUC on ``clean`` and ``attacked`` squares, with its 95 % interval.

    The interval is Hanley and McNeil's (1982) normal approximation, clipped to [0, 1].

    Args:
        net: the detector (``train_detector``).
        clean: the clean squares (label 0), in [0, 1] or uint8.
        attacked: the attacked squares (label 1), as many, of the same shape and kind.

    Returns:
        ``{"auc", "interval", "se", "test"}``: the AUC, its 95 % interval ``[low, high]``, its standard error and the
        number of squares on each side.

    Raises:
        InputError: squares that are not two N x C x s x s tensors of one shape.

    Shape:
        clean, attacked: N x C x s x s.

    Examples:
        >>> import torch
        >>> from robust.realism import score_detector, train_detector
        >>> clean = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> attacked = clean.clone()
        >>> attacked[:, :, 2:6, 2:6] = 1.0
        >>> net = train_detector(clean[:4], attacked[:4], seed=0, steps=20)
        >>> score_detector(net, clean[4:], attacked[4:])
        {'auc': 1.0, 'interval': [1.0, 1.0], 'se': 0.0, 'test': 4}
    """
    _check_squares(clean, attacked, "score_detector")
    x, y = _squares(clean, attacked)
    with torch.no_grad(), one_cpu_thread():
        scores = net(x).squeeze(1)
    auc = roc_auc(scores, y.bool())
    return _auc_summary(auc, hanley_mcneil(auc, len(clean), len(clean)), test=len(clean))


def halves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The seeded split of ``n`` images into the detector's training half and its test half.

    Args:
        n: the number of images.
        seed: the seed of the permutation.

    Returns:
        ``(train, test)``: image indices, ``n // 2`` for training and the rest (one more for an odd ``n``) for testing.

    Shape:
        returns two int64 tensors of ``n // 2`` and ``n - n // 2``.

    Examples:
        >>> from robust.realism import halves
        >>> halves(6, seed=0)
        (tensor([2, 5, 3]), tensor([0, 1, 4]))
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: n // 2], order[n // 2:]


def detector_auc(clean: torch.Tensor, attacked: torch.Tensor, *, seed: int = 0, steps: int = 80,
                 lr: float = 3e-3) -> dict:
    """How well a small CNN tells attacked context squares from clean ones: its ROC AUC on held-back images.

    The images are split (``halves``, seeded by ``seed``); the detector (``train_detector``, initialised from
    ``seed``) is trained on the training half's clean and attacked squares and scored (``score_detector``) on the
    test half's. Images, not squares, are split, so an image's two squares stay together. 0.5: it cannot tell them
    apart (natural); 1: every attacked square is recognised.

    Args:
        clean: the clean squares, image i in row i, in [0, 1] or uint8.
        attacked: the attacked squares of the same images, in the same rows.
        seed: the seed of the split and of the detector's initialisation.
        steps: the full-batch Adam steps.
        lr: the learning rate.

    Returns:
        ``{"auc", "interval", "se", "test", "train"}``: the AUC, its 95 % interval (Hanley-McNeil), its standard
        error, and the number of images tested and trained on.

    Raises:
        InputError: squares that are not two N x C x s x s tensors of one shape, fewer than 4 images, or a bad
            ``seed``, ``steps`` or ``lr``.

    Shape:
        clean, attacked: N x C x s x s, N >= 4.

    Examples:
        >>> import torch
        >>> from robust.realism import detector_auc
        >>> clean = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> attacked = clean.clone()
        >>> attacked[:, :, 2:6, 2:6] = 1.0  # a white square: easy to recognise
        >>> detector_auc(clean, attacked, seed=0)
        {'auc': 1.0, 'interval': [1.0, 1.0], 'se': 0.0, 'test': 4, 'train': 4}
    """
    _check_squares(clean, attacked, "detector_auc")
    n = clean.shape[0]
    if n < 4:
        raise InputError(f"{n} images are too few to train and test a detector; expected at least 4.")
    train, test = (i.to(clean.device) for i in halves(n, seed))
    net = train_detector(clean[train], attacked[train], seed=seed, steps=steps, lr=lr)
    return {**score_detector(net, clean[test], attacked[test]), "train": len(train)}


def heldout_auc(own: tuple[torch.Tensor, torch.Tensor], others: list[tuple[torch.Tensor, torch.Tensor]], *,
                seed: int = 0, steps: int = 80) -> dict:
    """The held-out detector's ROC AUC: trained on the *other* attacks' squares, scored on ``own``'s.

    Protocols section 7: a defender does not know the attack. The images are split as in ``detector_auc``
    (``halves``); training image i takes its squares from other attack i mod len(others), so the training set has one
    clean and one attacked square per image, as ``detector_auc``'s does, drawn from every other attack. The test half
    is scored with ``own``'s squares. The learning rate is ``train_detector``'s default.

    Args:
        own: ``(clean, attacked)`` squares of the attack scored (row i: image i).
        others: ``(clean, attacked)`` squares of the other attacks, of the same images at the same patch area.
        seed: the seed of the split and of the detector's initialisation.
        steps: the full-batch Adam steps.

    Returns:
        ``{"auc", "interval", "se", "test", "train", "attacks"}``: as ``detector_auc``'s, and the number of other
        attacks trained on.

    Raises:
        InputError: no other attack, squares of another shape, or fewer than 4 images.

    Shape:
        every tensor of ``own`` and ``others``: N x C x s x s, N >= 4.

    Examples:
        >>> import torch
        >>> from robust.realism import heldout_auc
        >>> g = torch.Generator().manual_seed(0)
        >>> clean = torch.rand(8, 3, 8, 8, generator=g)
        >>> white, black = clean.clone(), clean.clone()
        >>> white[:, :, 2:6, 2:6] = 1.0
        >>> black[:, :, 2:6, 2:6] = 0.0
        >>> noise = (clean + 0.3 * torch.rand(8, 3, 8, 8, generator=g)).clamp(0, 1)
        >>> heldout_auc((clean, white), [(clean, black), (clean, noise)], seed=0)
        {'auc': 1.0, 'interval': [1.0, 1.0], 'se': 0.0, 'test': 4, 'train': 4, 'attacks': 2}
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
    """Accumulates ``window_measures`` and the detector's squares over batches; ``summary`` reports them.

    Only what the detector needs is kept of the images: the context squares (``context_squares``: wider than 48 px
    downsampled to 48). ``update(x, x_adv, boxes)`` adds a batch, ``len`` counts its images, ``squares()`` gives the
    squares as uint8 (for held-out detectors, ``heldout_auc``), ``summary(seed)`` each measure's mean with its 95 %
    interval and ``detector_auc`` (None with under 4 images); ``pool`` merges the summaries of several seeds.

    Attributes:
        values: each measure's per-image values, one tensor per batch.
        clean: the clean context squares, one tensor per batch.
        attacked: the attacked context squares, one tensor per batch.

    Examples:
        >>> import torch
        >>> from robust.placement import paste
        >>> from robust.realism import Realism
        >>> x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> boxes = torch.tensor([[4, 4, 4, 4]] * 8)
        >>> realism = Realism()
        >>> realism.update(x, paste(x, torch.ones(3, 4, 4), boxes), boxes)  # a white 4 x 4 patch on each image
        >>> len(realism), realism.squares()["clean"].shape
        (8, torch.Size([8, 3, 8, 8]))
        >>> summary = realism.summary(seed=0)
        >>> sorted(summary), summary["tv"]["mean"], summary["detector_auc"]["auc"]
        (['detector_auc', 'hist', 'psnr', 'ssim', 'tv'], 0.0, 1.0)
        >>> realism.summary(seed=0, detector=False)["detector_auc"] is None  # the measures only: no detector trained
        True
    """

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

    def summary(self, seed: int = 0, *, detector: bool = True) -> dict:
        """Each measure's ``n``, ``mean``, ``sd`` and 95 % ``interval`` (normal approximation of a mean; all None,
        with the reason in ``undefined``, when some image has no value, e.g. the TV of a 1 x 1 patch), and
        ``detector_auc`` (``detector_auc``'s dict, seeded by ``seed``; None with under 4 images, or without
        ``detector``: training it is most of the cost of a summary, about 4 s of one CPU core at 500 images of
        32 px, more than a cheap attack's own)."""
        out: dict = {}
        for m, parts in self.values.items():
            v = torch.cat(parts).double()
            missing = int((~v.isfinite()).sum())
            out[m] = _undefined(v.numel(), m, missing) if missing else \
                _mean_summary(v.numel(), float(v.mean()), float(v.std()) if v.numel() > 1 else 0.0)
        out["detector_auc"] = (detector_auc(torch.cat(self.clean), torch.cat(self.attacked), seed=seed)
                               if detector and len(self) >= 4 else None)
        return out


def pool(summaries: list[dict]) -> dict:
    """One summary from those of several seeds (the same images).

    Each measure's mean and sd are over all the seeds' values together (``n`` their total count); its interval
    counts each image once (the largest seed's ``n``), because the seeds draw patches on the same images and their
    values are not independent: an interval from all ``n`` would be too narrow. A measure undefined in any seed stays
    undefined. The detector's AUC is pooled by ``pool_aucs``. One summary is returned as it is.

    Args:
        summaries: the seeds' ``Realism.summary()`` dicts.

    Returns:
        A summary of the same form; from two or more summaries, its ``detector_auc`` also counts the ``seeds`` (None
        if no seed had one).

    Raises:
        InputError: no summary.

    Examples:
        >>> import torch
        >>> from robust.placement import paste
        >>> from robust.realism import Realism, pool
        >>> x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> boxes = torch.tensor([[4, 4, 4, 4]] * 8)
        >>> realism = Realism()
        >>> realism.update(x, paste(x, torch.ones(3, 4, 4), boxes), boxes)
        >>> pooled = pool([realism.summary(seed=0), realism.summary(seed=1)])
        >>> pooled["tv"]["n"], pooled["detector_auc"]["seeds"]
        (16, 2)
    """
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
        images = max(p["n"] for p in parts)  # the seeds score the same images: n values, not n independent ones
        out[m] = {**_mean_summary(images, mean, math.sqrt(ss / (n - 1)) if n > 1 else 0.0), "n": n}
    out["detector_auc"] = pool_aucs([s["detector_auc"] for s in summaries if s.get("detector_auc")])
    return out


def pool_aucs(aucs: list[dict]) -> dict | None:
    """One AUC summary from several seeds' (the same images): the mean AUC with the mean of their standard errors.

    The standard errors are averaged, not combined, because the seeds' AUCs are not independent; the 95 % interval is
    the mean AUC +- 1.96 times that error, clipped to [0, 1]. The counts (``train``, ``test``, ``attacks``) are the
    first summary's.

    Args:
        aucs: the seeds' AUC summaries (``detector_auc``'s or ``heldout_auc``'s dicts).

    Returns:
        ``{"auc", "interval", "se", ..., "seeds"}``, or None for no summary.

    Examples:
        >>> from robust.realism import pool_aucs
        >>> pooled = pool_aucs([{"auc": 0.8, "se": 0.05, "test": 50, "train": 50},
        ...                     {"auc": 0.9, "se": 0.03, "test": 50, "train": 50}])
        >>> round(pooled["auc"], 3), [round(v, 3) for v in pooled["interval"]], pooled["seeds"], pooled["test"]
        (0.85, [0.772, 0.928], 2, 50)
    """
    if not aucs:
        return None
    extra = {k: aucs[0][k] for k in ("train", "test", "attacks") if k in aucs[0]}
    return _auc_summary(sum(a["auc"] for a in aucs) / len(aucs), sum(a["se"] for a in aucs) / len(aucs), **extra,
                        seeds=len(aucs))


__all__ = ["MEASURES", "Realism", "colour_histograms", "context_squares", "detector_auc", "halves", "heldout_auc",
           "pool", "pool_aucs", "roc_auc", "score_detector", "total_variation", "train_detector", "window_measures"]
