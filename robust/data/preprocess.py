"""The evaluation transform of a photo: resize the shorter side, centre-crop a square, as timm's and torchvision's
ImageNet evaluation transforms do (PIL resampling, so a model sees the pixels its own pipeline would give it)."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from robust.checks import InputError, check_choice, check_int

if TYPE_CHECKING:
    from PIL import Image

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side to ``resize`` px with ``interpolation``, then crop the central ``size`` x ``size``.

    The evaluation transform of a photo, as timm's and torchvision's ImageNet evaluation transforms do, with PIL
    resampling, so a model sees the pixels its own pipeline would give it. Calling it turns a PIL image or an
    H x W (x C) uint8 array into a uint8 3 x size x size tensor (converted to RGB). ``from_crop_pct`` builds timm's
    convention (shorter side floor(size / crop_pct)), ``for_size`` the default for a size (shorter side 256/224 of
    it, bicubic).

    Attributes:
        size: the side of the square crop in px (>= 8).
        resize: the shorter side's length after resizing, in px (>= size).
        interpolation: ``bilinear``, ``bicubic`` or ``nearest``.

    Raises:
        InputError: a size under 8, a resize under the size or another interpolation.

    Examples:
        >>> import numpy as np
        >>> from robust.data import Preprocess
        >>> preprocess = Preprocess(size=16, resize=20, interpolation="bilinear")
        >>> print(preprocess)
        resize 20 (bilinear), centre crop 16
        >>> x = preprocess(np.zeros((30, 40, 3), np.uint8))
        >>> tuple(x.shape), x.dtype
        ((3, 16, 16), torch.uint8)
        >>> Preprocess.for_size(32)
        Preprocess(size=32, resize=37, interpolation='bicubic')
        >>> Preprocess.from_crop_pct(240, 0.882)
        Preprocess(size=240, resize=272, interpolation='bicubic')
    """

    size: int = 224
    resize: int = 256
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        check_int(self.size, "size", low=8, expected="an integer >= 8")
        check_int(self.resize, "resize", low=self.size, expected=f"an integer >= size ({self.size})")
        check_choice(self.interpolation, INTERPOLATIONS, "interpolation")

    @classmethod
    def from_crop_pct(cls, size: int, crop_pct: float, interpolation: str = "bicubic") -> Preprocess:
        """timm's convention: the shorter side resized to floor(size / crop_pct)."""
        if not isinstance(crop_pct, (int, float)) or not 0 < crop_pct <= 1:
            raise InputError(f"crop_pct={crop_pct!r} is not valid; expected a number in (0, 1].")
        return cls(size, math.floor(size / crop_pct), interpolation)

    @classmethod
    def for_size(cls, size: int) -> Preprocess:
        """The default for ``size`` px: shorter side 256/224 of it, bicubic."""
        return cls(size, round(size * 256 / 224), "bicubic")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return f"resize {self.resize} ({self.interpolation}), centre crop {self.size}"

    def __call__(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        """A PIL image or an H x W (x C) uint8 array -> a uint8 3 x size x size tensor."""
        from PIL import Image

        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        image = image.convert("RGB")
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        long = int(self.resize * long / short)  # torchvision's Resize(int) rounding
        size = (self.resize, long) if w <= h else (long, self.resize)
        resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
        image = image.resize(size, resample[self.interpolation])
        left, top = (image.size[0] - self.size) // 2, (image.size[1] - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def model_preprocess(cfg: dict) -> Preprocess | None:
    """The evaluation transform a timm pretrained config states: its input size, ``crop_pct`` and interpolation.

    The crop is the config's ``input_size`` (the size the Backbone takes, not a larger ``test_input_size``), the
    shorter side floor(size / crop_pct) (``crop_pct`` 0.875 when missing), and the interpolation bicubic unless the
    config names bilinear or nearest.

    Args:
        cfg: a timm ``pretrained_cfg`` (or ``default_cfg``) as a dict.

    Returns:
        The ``Preprocess``, or None when the config states no square input size.

    Raises:
        InputError: a ``crop_pct`` outside (0, 1].

    Examples:
        >>> from robust.data.preprocess import model_preprocess
        >>> model_preprocess({"input_size": (3, 240, 240), "crop_pct": 0.882, "interpolation": "bicubic"})
        Preprocess(size=240, resize=272, interpolation='bicubic')
        >>> model_preprocess({"input_size": (3, 224, 160)}) is None
        True
    """
    size = cfg.get("input_size")  # the size the Backbone takes (not a larger test_input_size)
    if not size or len(size) != 3 or size[1] != size[2]:
        return None
    interpolation = cfg.get("interpolation") if cfg.get("interpolation") in INTERPOLATIONS else "bicubic"
    return Preprocess.from_crop_pct(int(size[1]), float(cfg.get("crop_pct") or 0.875), interpolation)


__all__ = ["INTERPOLATIONS", "Preprocess", "model_preprocess"]
