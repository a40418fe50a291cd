"""Checking a certificate by search: does any patch, at any place, change a label the defence certifies?

A certified defence claims that no patch of its size, anywhere, changes the label of a certified image. The claim
can be wrong (a mask set that misses windows, a fill the model sees through, a bug in the rule), and a claim that
is never tested is a hope. ``violations`` pastes given patches at every place on a stride grid (stride 1: every
place) on each certified image and counts the placements whose defended label differs: any count above zero is a
bug in the defence or its certificate.
"""

from __future__ import annotations

import torch

from robust.checks import InputError
from robust.defenses.patchcleanser import PatchCleanser
from robust.placement import paste, placements


def violations(defended: PatchCleanser, x: torch.Tensor, y: torch.Tensor, patches: torch.Tensor, *,
               stride: int = 1, chunk: int = 256) -> torch.Tensor:
    """Per image, how many placements of ``patches`` change a label that ``defended`` certifies for it.

    Only images certified for their ``y`` are searched (the others count 0): each patch is pasted at every place of
    the stride grid and the defended label of every patched image is compared with ``y``.

    Args:
        defended: the defended model.
        x: the images.
        y: the labels to hold (e.g. the defended predictions on ``x``).
        patches: the patches to place: one set for all images, or one set per image (e.g. each image's own
            optimised patch); their side is at most the defended patch's.
        stride: pixels between neighbouring places (1: every place, as the certificate claims).
        chunk: patched images per defended forward.

    Returns:
        Per image, the number of (patch, place) pairs whose defended label is not ``y``; a certificate holds when
        every count is 0.

    Raises:
        InputError: patches larger than the certified patch, or of another shape than the images'.

    Shape:
        x: N x 3 x H x W in [0, 1]; y: N; patches: Q x 3 x p x p or N x Q x 3 x p x p; returns N (long).

    Examples:
        >>> import torch
        >>> from robust.data import load_dataset
        >>> from robust.defenses import PatchCleanser
        >>> from robust.defenses.certificate import violations
        >>> from robust.models import load_model
        >>> defended = PatchCleanser(load_model("zoo:digits-m/resnet", "cpu"), area=0.02, k=3)
        >>> x, y = load_dataset("digits-m", "test").batch(torch.tensor([0, 22, 56]))
        >>> defended.certify(x, y).tolist()
        [False, True, True]
        >>> violations(defended, x, y, torch.zeros(1, 3, 5, 5), stride=9).tolist()  # a black patch, 16 places
        [0, 0, 0]
    """
    n = x.shape[0]
    if patches.ndim == 4:
        patches = patches.expand(n, *patches.shape)
    if patches.ndim != 5 or patches.shape[0] != n or patches.shape[2] != x.shape[1] or \
            patches.shape[-1] != patches.shape[-2] or patches.shape[-1] > defended.patch:
        raise InputError(f"patches of shape {tuple(patches.shape)} do not fit; expected Q x {x.shape[1]} x p x p or "
                         f"{n} x Q x {x.shape[1]} x p x p with p <= {defended.patch} (the certified patch).")
    y = y.to(x.device)
    boxes = placements(tuple(x.shape[-2:]), patches.shape[-1], stride).to(x.device)
    q, p = patches.shape[1], boxes.shape[0]
    counts = torch.zeros(n, dtype=torch.long, device=x.device)
    images = defended.certify(x, y).nonzero()[:, 0]
    rows = torch.arange(images.shape[0] * q * p, device=x.device)
    with torch.no_grad():
        for part in rows.split(chunk):
            image, patch, box = images[part // (q * p)], (part // p) % q, part % p
            labels = defended.logits(paste(x[image], patches[image, patch], boxes[box], check=False)).argmax(1)
            counts.index_add_(0, image, (labels != y[image]).long())
    return counts


__all__ = ["violations"]
