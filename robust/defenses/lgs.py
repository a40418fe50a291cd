"""Local Gradients Smoothing (Naseer, Khan and Porikli, WACV 2019): an empirical patch defence that damps the image
where its gradient is dense, before the model sees it.

An adversarial patch is a small region of unnaturally dense high-frequency texture. LGS takes the image's
first-order gradient magnitude g, normalised to [0, 1] per image, keeps it only in the windows (``window`` pixels,
``overlap`` pixels shared with the next) whose mean exceeds ``threshold``, and multiplies the image by
``clamp(1 - smoothing * g, 0, 1)`` there: dense-gradient regions go dark, smooth ones pass unchanged. The paper's
settings (15-px windows overlapping by 5, threshold 0.1, smoothing 2.3) are for 299-px ImageNet photos.

It is not certified and it is broken by an adaptive attacker (Chiang et al., ICLR 2020, with BPDA): the smoothing is
piecewise constant in the window choice and its factor zeroes the gradient where it darkens the patch, so a gradient
through it understates what an attacker can do. The adaptive attack therefore differentiates through it as the
identity (BPDA, Athalye et al. 2018): forward with the smoothing, backward as if it were not there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robust.checks import InputError, check_number, check_positive_int
from robust.defenses.base import Defended
from robust.models.backbone import Backbone
from robust.registry import register_defense


def gradient_mask(x: torch.Tensor, window: int, overlap: int, threshold: float) -> torch.Tensor:
    """LGS's gradient map: the normalised gradient magnitude of each image, kept in its dense windows, 0 elsewhere.

    Args:
        x: the images.
        window: the side of the square windows, in pixels (clipped to the image).
        overlap: the pixels two neighbouring windows share (the stride is ``window - overlap``).
        threshold: a window is dense when the mean of its normalised gradient exceeds this.

    Returns:
        Per pixel, the image's normalised gradient magnitude (in [0, 1]) where a dense window covers it, else 0.

    Shape:
        x: N x C x H x W; returns N x 1 x H x W.

    Examples:
        >>> import torch
        >>> from robust.defenses.lgs import gradient_mask
        >>> x = torch.zeros(1, 3, 16, 16)
        >>> x[..., 4:8, 4:8] = torch.rand(3, 4, 4)  # a dense patch on a flat image
        >>> g = gradient_mask(x, window=4, overlap=1, threshold=0.1)
        >>> bool(g[..., 12:, 12:].eq(0).all()), bool(g[..., 4:8, 4:8].gt(0).any())
        (True, True)
    """
    import kornia.filters

    gray = x.mean(1, keepdim=True)
    g = kornia.filters.spatial_gradient(gray).pow(2).sum(2).sqrt()  # N x 1 x H x W (read, never differentiated)
    g = g / g.amax((1, 2, 3), keepdim=True).clamp_min(1e-6)  # a flat image stays 0
    h, w = x.shape[-2:]
    side = min(window, h, w)
    stride = max(side - overlap, 1)
    rows, cols = (math.ceil((n - side) / stride) + 1 for n in (h, w))
    padded = F.pad(g, (0, (cols - 1) * stride + side - w, 0, (rows - 1) * stride + side - h), mode="replicate")
    dense = (F.avg_pool2d(padded, side, stride) > threshold).to(x.dtype)  # N x 1 x rows x cols
    covered = F.conv_transpose2d(dense, x.new_ones(1, 1, side, side), stride=stride)[..., :h, :w]
    return g * (covered > 0)


@register_defense
class LocalGradientSmoothing(Defended):
    """A model behind Local Gradients Smoothing: each image is damped where its gradient is dense, then classified.

    Empirical (no certificate); it costs one gradient filter and one forward per image. Under an attack its gradient
    is the base model's at the smoothed image (BPDA: the smoothing is the identity on the way back), the adaptive
    attack that breaks it; ``adaptive=False`` on an attack crafts on the base instead (the paper's setting). The
    spec ``defense:lgs?window=8&overlap=2&threshold=0.5&smoothing=1&base=SPEC`` loads one.

    Args:
        model: the model to defend (a ``Backbone`` without a defence; it is shared, not copied).
        window: the windows' side in pixels (the paper's 15 is for 299-px images).
        overlap: pixels shared by neighbouring windows (None: a third of the window, the paper's 5 of 15).
        threshold: a window is smoothed when its mean normalised gradient exceeds this (the paper's 0.1).
        smoothing: the factor lambda of ``x * clamp(1 - lambda * g, 0, 1)`` (the paper's 2.3).

    Raises:
        InputError: a model that is already defended, or options out of range.

    Shape:
        ``defended(x)``: x is N x 3 x H x W in [0, 1]; returns N x num_classes logits.

    Examples:
        >>> import torch
        >>> from robust.defenses import LocalGradientSmoothing
        >>> from robust.models import load_model
        >>> defended = LocalGradientSmoothing(load_model("zoo:digits-m/resnet", "cpu"), window=8, overlap=2)
        >>> tuple(defended(torch.rand(2, 3, 32, 32)).shape), defended.name
        ((2, 10), 'zoo:digits-m/resnet+lgs')
    """

    name = "lgs"  # the registered name (an instance's ``name`` is the defended model's)
    description = ("Local Gradients Smoothing (Naseer et al., 2019): damps dense-gradient windows before the model; "
                   "empirical, attacked adaptively through BPDA")

    def __init__(self, model: Backbone, *, window: int = 15, overlap: int | None = None, threshold: float = 0.1,
                 smoothing: float = 2.3):
        super().__init__(model)
        check_positive_int(window, "window")
        overlap = window // 3 if overlap is None else overlap
        if not isinstance(overlap, int) or isinstance(overlap, bool) or not 0 <= overlap < window:
            raise InputError(f"overlap={overlap!r} is not valid; expected an integer in "
                             f"[0, window - 1 = {window - 1}].")
        self.window, self.overlap = window, overlap
        self.threshold = check_number(threshold, "threshold", low=0, high=1)
        self.smoothing = check_number(smoothing, "smoothing", low=0)
        self.spec = (f"defense:lgs?window={window}&overlap={overlap}&threshold={self.threshold:g}"
                     f"&smoothing={self.smoothing:g}&base={model.spec}")

    def smooth(self, x: torch.Tensor) -> torch.Tensor:
        """The smoothed images the base model classifies (N x C x H x W in [0, 1], same shape)."""
        g = gradient_mask(x.detach(), self.window, self.overlap, self.threshold)
        return x * (1 - self.smoothing * g).clamp(0, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The base's logits on the smoothed images; the gradient passes the smoothing as the identity (BPDA)."""
        smoothed = self.smooth(x)
        if torch.is_grad_enabled() and x.requires_grad:
            smoothed = x + (smoothed - x).detach()
        return self.base.logits(smoothed)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, window={self.window}, overlap={self.overlap}, "
                f"threshold={self.threshold:g}, smoothing={self.smoothing:g}")


__all__ = ["LocalGradientSmoothing", "gradient_mask"]
