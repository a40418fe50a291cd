"""PatchCleanser (Xiang, Mahloujifar and Mittal, USENIX Security 2022): double masking, certifiably robust to one
patch of a given size anywhere on the image.

A set of K = k x k rectangular masks is built so that any square patch of the threat model's side lies wholly
under at least one mask. Inference masks the image with each mask (first round); if every masked image gets the same
label, that is the answer. Otherwise, for each mask whose label disagrees with the majority, the image is masked
again with every mask (second round): a disagreer whose two-mask predictions all agree with it wins; else the
majority label does. An image is **certified** for the patch size when every two-mask prediction equals its label:
then no patch of that size at any place can change the defended prediction.

This first version computes every two-mask prediction (K^2 forwards per image, in batches) without a host sync, so
that the defence can sit inside an attack's loop; the paper's saving (the second round only where the first round
disagrees) is left to a later step with its bench.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robust.checks import InputError, check_number, check_positive_int
from robust.models.backbone import Backbone
from robust.models.state import eval_mode
from robust.placement import patch_side


def mask_set(image_hw: tuple[int, int], patch: int, k: int = 6) -> torch.Tensor:
    """The k x k masks that cover every square ``patch`` x ``patch`` window of an H x W image.

    Per axis of length n: the stride is s = ceil((n - patch + 1) / k) and the mask side m = patch + s - 1, at
    offsets 0, s, 2s, ... (the last ones moved inside the image), so the window starting at a lies under the mask
    starting at floor(a / s) * s.

    Args:
        image_hw: the image's (H, W) in pixels.
        patch: the side of the patch the masks must cover, in pixels.
        k: masks per axis.

    Returns:
        The masks, True where a mask hides the pixel.

    Raises:
        InputError: a patch or a k that does not fit the image.

    Shape:
        Returns K x H x W (bool), K = k * k.

    Examples:
        >>> from robust.defenses.patchcleanser import mask_set
        >>> masks = mask_set((32, 32), patch=5, k=6)
        >>> tuple(masks.shape), int(masks[0].sum())  # 36 masks of 9 x 9 pixels (stride 5)
        ((36, 32, 32), 81)
    """
    check_positive_int(k, "k")
    check_positive_int(patch, "patch")
    axes = []
    for n in image_hw:
        if patch > n or k > n - patch + 1:
            raise InputError(f"patch={patch}, k={k} do not fit a side of {n} pixels; expected patch <= {n} and "
                             f"k <= {n - patch + 1}.")
        stride = math.ceil((n - patch + 1) / k)
        side = patch + stride - 1
        starts = torch.tensor([min(i * stride, n - side) for i in range(k)])
        axes.append((torch.arange(n)[None, :] >= starts[:, None]) & (torch.arange(n)[None, :] < starts[:, None] + side))
    rows, cols = axes  # k x H, k x W
    return (rows[:, None, :, None] & cols[None, :, None, :]).reshape(k * k, *image_hw)


class PatchCleanser(nn.Module):
    """A model defended by PatchCleanser's double masking, certifiably robust to one square patch of ``area``.

    Its forward returns, per image, the base model's logits on the one-mask image whose label the double-masking
    rule outputs: their arg-max is the defended prediction, and their gradient flows through that masked image
    (an adaptive attack differentiates through the chosen mask; the choice itself is not differentiable).
    ``certify`` says which images are certified.

    Args:
        model: the model to defend (left as it was found).
        area: the patch the masks cover, as a share of the image (``robust.placement.patch_side`` rounds it to a
            side in pixels; 0.02 is the certified leaderboard's threat model).
        k: masks per axis (K = k * k masks).
        fill: the value a mask writes into the pixels it hides, in [0, 1].
        chunk: how many masked images go through the model at once.

    Shape:
        ``defended(x)``: x is N x 3 x H x W in [0, 1]; returns N x num_classes logits.

    Examples:
        >>> import torch
        >>> from robust.defenses.patchcleanser import PatchCleanser
        >>> from robust.models import load_model
        >>> defended = PatchCleanser(load_model("zoo:digits-m/resnet", "cpu"), area=0.02, k=4)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> tuple(defended(x).shape), defended.patch, defended.masks.shape[0]
        ((2, 10), 5, 16)
        >>> defended.certify(x, defended(x).argmax(1)).dtype
        torch.bool
    """

    def __init__(self, model: Backbone, *, area: float = 0.02, k: int = 6, fill: float = 0.5, chunk: int = 4096):
        super().__init__()
        if not isinstance(model, Backbone):
            raise TypeError(f"model must be a robust Backbone (load_model), got {type(model).__name__}.")
        self.model = model
        self.area, self.k, self.fill = float(area), k, check_number(fill, "fill", low=0, high=1)
        self.chunk = check_positive_int(chunk, "chunk")
        self.patch = patch_side(self.area, tuple(model.input_size[1:]))
        masks = mask_set(tuple(model.input_size[1:]), self.patch, k)
        self.register_buffer("masks", masks, persistent=False)
        self.register_buffer("pairs", (masks[:, None] | masks[None, :]).flatten(0, 1), persistent=False)  # (i, j)

    def _logits(self, images: torch.Tensor, hide: torch.Tensor) -> torch.Tensor:
        """The base model's logits on every image under every mask of ``hide``, ``chunk`` masked images at a time
        (each chunk built from its images and masks by index, so the N x M masked images never exist at once):
        images N x C x H x W, hide M x H x W -> N x M x classes."""
        n, m = images.shape[0], hide.shape[0]
        flat = torch.arange(n * m, device=images.device)
        out = []
        for rows in flat.split(self.chunk):
            covered = hide[rows % m][:, None].to(images.dtype)
            out.append(self.model.logits(images[rows // m] * (1 - covered) + self.fill * covered))
        return torch.cat(out).reshape(n, m, -1)

    def _two_mask_labels(self, x: torch.Tensor) -> torch.Tensor:
        """N x K x K labels of every two-mask image (i, j), without gradients."""
        k = self.masks.shape[0]
        with torch.no_grad():
            return self._logits(x, self.pairs).argmax(-1).reshape(-1, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.model):
            first = self._logits(x, self.masks)  # N x K x classes
            labels = first.argmax(-1)  # N x K
            second = self._two_mask_labels(x)  # N x K x K
        majority = labels.mode(1).values
        agrees = (second == labels[:, :, None]).all(2)  # mask i's two-mask predictions all agree with its label
        winner = agrees & (labels != majority[:, None])
        unanimous = (labels == labels[:, :1]).all(1)
        chosen = torch.where(unanimous, 0, torch.where(winner.any(1), winner.long().argmax(1),
                                                      (labels == majority[:, None]).long().argmax(1)))
        return first.gather(1, chosen[:, None, None].expand(-1, 1, first.shape[-1]))[:, 0]

    def certify(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Whether each image's label ``y`` is certified: every two-mask prediction equals it.

        Args:
            x: the images.
            y: the labels to certify (the defended predictions, or the true labels for certified accuracy).

        Returns:
            Per image, whether no patch of ``self.patch`` pixels anywhere can change the defended prediction from
            ``y``.

        Shape:
            x: N x 3 x H x W in [0, 1]; y: N; returns N (bool).

        Examples:
            >>> import torch
            >>> from robust.defenses.patchcleanser import PatchCleanser
            >>> from robust.models import load_model
            >>> defended = PatchCleanser(load_model("zoo:digits-m/resnet", "cpu"), area=0.02, k=4)
            >>> defended.certify(torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 2])).shape
            torch.Size([3])
        """
        with eval_mode(self.model):
            return (self._two_mask_labels(x) == y.to(x.device)[:, None, None]).all((1, 2))


__all__ = ["PatchCleanser", "mask_set"]
