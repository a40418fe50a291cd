"""Fresh digits-m composites that never repeat: a training stream for models and generators that would memorise
the 17,500 stored composites on a long schedule.

Each image is one of a split's digits, at a random position (MNIST's 28 x 28 field anywhere in the 32 x 32 image,
not only centred), blended MNIST-M style onto a random crop of a random bundled photo at a random scale: the
recipe of ``robust.data.digits_m``, drawn afresh. Batch ``step`` depends only on (seed, step), so a resumed run
draws exactly the batches it would have drawn, and no state needs saving. The digits are the split's own (``fit``
never sees a ``val`` or ``test`` digit); the labels are the digits' classes (a generator's training relabels them
by the victim's decisions).
"""

from __future__ import annotations

import numpy as np
import torch

from robust.checks import InputError, check_int, check_positive_int
from robust.data import digits_m

STREAM_SEED = 20261203  # mixed with the caller's seed and the step, so the stream is not the stored sets' draw
FIELD = 28  # MNIST's digit field
SPLITS = ("train", "fit")  # the splits a stream trains on (val and test digits are for scoring only)


class DigitStream:
    """An endless stream of digits-m composites of the ``split``'s digits (``train`` or ``fit``), seeded by
    ``seed``.

    Example::

        stream = DigitStream("fit", seed=0)
        x, y = stream.batch(step=0, n=128)  # x: 128 x 3 x 32 x 32 float in [0, 1], y: 128 digit classes
    """

    name = "digits-m-stream"
    class_names = digits_m.CLASS_NAMES
    num_classes = len(digits_m.CLASS_NAMES)
    image_size = (3, digits_m.SIZE, digits_m.SIZE)

    def __init__(self, split: str = "fit", seed: int = 0):
        if split not in SPLITS:
            raise InputError(f"split={split!r} is not valid for a digits-m stream; expected one of {SPLITS} (the "
                             "val and test digits are for scoring only).")
        self.split, self.seed = split, check_int(seed, "seed", low=0, expected="an integer >= 0")
        stored = digits_m.load(split)
        self.digits = stored.meta["digit"].unique().numpy()  # source indices of the split's digits
        self._source, self._labels = digits_m._digits()  # 28 x 28 uint8, classes

    def batch(self, step: int, n: int, device: torch.device | str | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch number ``step`` of ``n`` images: (n x 3 x 32 x 32 float in [0, 1], n digit classes), on
        ``device``; the same (seed, step, n) always gives the same batch."""
        check_int(step, "step", low=0, expected="an integer >= 0")
        check_positive_int(n, "n")
        rng = np.random.default_rng([STREAM_SEED, self.seed, step])
        which = self.digits[rng.integers(self.digits.size, size=n)]
        top, left = (rng.integers(digits_m.SIZE - FIELD + 1, size=n) for _ in range(2))
        field = np.arange(FIELD)
        canvas = np.zeros((n, digits_m.SIZE, digits_m.SIZE), dtype=np.uint8)
        canvas[np.arange(n)[:, None, None], (top[:, None] + field)[:, :, None],
               (left[:, None] + field)[:, None, :]] = self._source[which]
        images = digits_m._composite(canvas, list(digits_m._backgrounds()), rng)
        x = torch.from_numpy(images).to(device).float().div_(255)
        return x, torch.from_numpy(self._labels[which]).to(device)

