"""Fresh 224-px crops of the bundled photos that never repeat: the training stream of a generator attacking an
ImageNet model, where the 480 stored ``imagenet-crops`` train crops would be memorised on a long schedule.

Each image is a random resized crop of one of the training photos (``photos.CROP_PHOTOS["train"]``: never a test
photo, so the held-out ``imagenet-crops`` test crops stay unseen), flipped with probability 1/2 and colour-jittered
(brightness, contrast and saturation each scaled by a factor in [1 - JITTER, 1 + JITTER]). Batch ``step`` depends
only on (seed, step), so a resumed run draws exactly the batches it would have drawn, and no state needs saving.
The labels are -1: a generator's training labels each image by the victim's own decision, as ``imagenet-crops``
does.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import roi_align

from robust.checks import InputError, check_int, check_positive_int
from robust.data import photos

STREAM_SEED = 20261204  # mixed with the caller's seed and the step
SCALE = (0.25, 1.0)  # a crop's area, as a fraction of the photo's largest square (torchvision's RandomResizedCrop
# draws down to 0.08 of the whole photo; a quarter keeps some scene around the patch's window at 224 px)
RATIO = (3 / 4, 4 / 3)  # a crop's width over its height
JITTER = 0.2  # brightness, contrast and saturation factors in [0.8, 1.2]
SPLITS = ("train",)


class PhotoStream:
    """An endless stream of random resized, flipped, colour-jittered ``size``-px crops of the training photos,
    seeded by ``seed``.

    Args:
        split: the photos it crops: ``train`` (the test photos are for scoring only).
        seed: mixed with each step's number into the batch's draws.
        size: the side of the square crops, in pixels (the model's input size).

    Raises:
        InputError: another split, a negative seed, a size below 1.

    Shape:
        ``batch(step, n)`` gives n x 3 x size x size floats in [0, 1] and n labels of -1.

    Examples:
        >>> from robust.data.photo_stream import PhotoStream
        >>> x, y = PhotoStream(seed=0, size=64).batch(step=0, n=4)
        >>> tuple(x.shape), y.tolist()
        ((4, 3, 64, 64), [-1, -1, -1, -1])
    """

    name = "imagenet-crops-stream"

    def __init__(self, split: str = "train", seed: int = 0, size: int = 224):
        if split not in SPLITS:
            raise InputError(f"split={split!r} is not valid for a photo stream; expected one of {SPLITS} (the test "
                             "photos are for scoring only).")
        self.split, self.seed = split, check_int(seed, "seed", low=0, expected="an integer >= 0")
        self.size = check_positive_int(size, "size")
        # uint8 3 x H x W each; a photo is drawn whole, so every crop sees its true pixels
        self._photos = [torch.from_numpy(photos.bundled_photo(name).copy()).permute(2, 0, 1).contiguous()
                        for name in photos.CROP_PHOTOS[split]]

    def batch(self, step: int, n: int, device: torch.device | str | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number ``step`` of ``n`` crops: (n x 3 x size x size float in [0, 1], n labels of -1), on
        ``device``; the same (seed, step, n) always gives the same batch.

        The crops of one photo are resized together by ``torchvision.ops.roi_align`` (bilinear samples averaged over
        each output pixel's bin, so a large crop is not aliased): a loop over the photos, not the images."""
        check_int(step, "step", low=0, expected="an integer >= 0")
        check_positive_int(n, "n")
        rng = np.random.default_rng([STREAM_SEED, self.seed, step])
        which = rng.integers(len(self._photos), size=n)
        area = rng.uniform(*SCALE, size=n)
        ratio = np.exp(rng.uniform(np.log(RATIO[0]), np.log(RATIO[1]), size=n))
        u = rng.random((n, 2))
        flip = rng.random(n) < 0.5
        factors = rng.uniform(1 - JITTER, 1 + JITTER, size=(n, 3))
        out = torch.empty(n, 3, self.size, self.size)
        for k, photo in enumerate(self._photos):
            rows = np.flatnonzero(which == k)
            if rows.size == 0:
                continue
            h, w = photo.shape[1:]
            side = min(h, w) * np.sqrt(area[rows])
            ch = np.clip(np.round(side / np.sqrt(ratio[rows])), 1, h).astype(int)
            cw = np.clip(np.round(side * np.sqrt(ratio[rows])), 1, w).astype(int)
            top = (u[rows, 0] * (h - ch + 1)).astype(int)
            left = (u[rows, 1] * (w - cw + 1)).astype(int)
            boxes = torch.from_numpy(np.stack([np.zeros(rows.size), left, top, left + cw, top + ch], 1)).float()
            out[torch.from_numpy(rows)] = roi_align(photo[None].float(), boxes, self.size, sampling_ratio=0,
                                                    aligned=True)  # each output pixel: the mean of its bin's samples
        out = out.div_(255).clamp_(0, 1)
        out = torch.where(torch.from_numpy(flip).view(-1, 1, 1, 1), out.flip(-1), out)
        out = jitter(out, torch.from_numpy(factors).float())
        return out.to(device), torch.full((n,), -1, dtype=torch.long, device=device)


def jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Scale each image's brightness, contrast and saturation by ``factors[:, 0]``, ``[:, 1]``, ``[:, 2]`` (1: no
    change), torchvision's ``ColorJitter`` arithmetic, batched and clamped to [0, 1].

    Args:
        x: the images.
        factors: per image, the brightness, contrast and saturation factors.

    Returns:
        The jittered images.

    Shape:
        x: N x 3 x H x W in [0, 1]; factors: N x 3; returns N x 3 x H x W.

    Examples:
        >>> import torch
        >>> from robust.data.photo_stream import jitter
        >>> x = torch.rand(2, 3, 8, 8)
        >>> torch.allclose(jitter(x, torch.ones(2, 3)), x)
        True
    """
    b, c, s = (factors[:, i].view(-1, 1, 1, 1) for i in range(3))
    x = (x * b).clamp(0, 1)
    x = (c * x + (1 - c) * _grey(x).mean((2, 3), keepdim=True)).clamp(0, 1)
    return (s * x + (1 - s) * _grey(x)).clamp(0, 1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W luma of N x 3 x H x W RGB images (ITU-R 601 weights, as torchvision's)."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]


__all__ = ["PhotoStream", "jitter"]
