"""PatchCleanser (Xiang, Mahloujifar and Mittal, USENIX Security 2022): double masking, certifiably robust to one
patch of a given size anywhere on the image.

A set of K = k x k rectangular masks is built so that any square patch of the threat model's side lies wholly
under at least one mask. Inference masks the image with each mask (first round); if every masked image gets the same
label, that is the answer. Otherwise, for each mask whose label disagrees with the majority, the image is masked
again with every mask (second round): a disagreer whose two-mask predictions all agree with it wins; else the
majority label does. An image is **certified** for the patch size when every two-mask prediction equals its label:
then no patch of that size at any place can change the defended prediction.

As in the paper, the second round runs only where the first round's label disagrees with the majority, and an
image's disagreeing masks are tried in order until one wins: on clean images of a good model few disagree, so the
defence costs about K forwards per image, not K^2. It runs in rounds, the r-th disagreer of every undecided image in
one batch; finding them is a host sync per round (their number sets the round's size). ``certify`` needs every
two-mask prediction and computes all K^2.
"""

from __future__ import annotations

import math

import torch

from robust.checks import InputError, check_number, check_positive_int
from robust.defenses.base import Defended
from robust.models.backbone import Backbone
from robust.placement import patch_side
from robust.registry import register_defense


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


@register_defense
class PatchCleanser(Defended):
    """A model defended by PatchCleanser's double masking, certifiably robust to one square patch of ``area``.

    It is a ``Backbone`` like any other (attacks, evaluations, boards and ``robust.testing`` take it; the spec
    ``defense:patchcleanser?area=0.02&base=SPEC`` loads one). Its logits are, per image, the base model's logits on
    the one-mask image whose label the double-masking rule outputs: their arg-max is the defended prediction. An
    attack's gradient flows through that masked image (the adaptive attack differentiates through the mask the
    defence chose; the choice itself is not differentiable). ``certify`` says which images are certified. Grad-CAM
    reads the base model (``undefended``).

    Args:
        model: the model to defend (a ``Backbone`` without a defence; it is shared, not copied).
        area: the patch the masks cover, as a share of the image (``robust.placement.patch_side`` rounds it to a
            side in pixels; 0.02 is the certified leaderboard's threat model).
        k: masks per axis (K = k * k masks; the paper's default is 6).
        fill: the value a mask writes into the pixels it hides, in [0, 1].
        chunk: how many masked images go through the model at once (None: 64 on the CPU, where small batches stay
            in cache: 2.3x faster than 4096 for the zoo resnet in ``bench/patchcleanser_cost.py``; 1024 elsewhere).

    Raises:
        InputError: a model that is already defended, or a patch and k that do not fit its images.

    Shape:
        ``defended(x)``: x is N x 3 x H x W in [0, 1]; returns N x num_classes logits.

    Examples:
        >>> import torch
        >>> from robust.defenses import PatchCleanser
        >>> from robust.models import load_model
        >>> defended = PatchCleanser(load_model("zoo:digits-m/resnet", "cpu"), area=0.02, k=4)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> tuple(defended(x).shape), defended.patch, defended.masks.shape[0], defended.name
        ((2, 10), 5, 16, 'zoo:digits-m/resnet+patchcleanser')
        >>> defended.certify(x, defended(x).argmax(1)).dtype
        torch.bool
    """

    name = "patchcleanser"  # the registered name (an instance's ``name`` is the defended model's)
    description = ("PatchCleanser's double masking (Xiang et al., 2022): certified against one square patch of `area` "
                   "anywhere")

    def __init__(self, model: Backbone, *, area: float = 0.02, k: int = 6, fill: float = 0.5,
                 chunk: int | None = None):
        super().__init__(model)
        self.area, self.k, self.fill = float(area), k, check_number(fill, "fill", low=0, high=1)
        self.chunk = None if chunk is None else check_positive_int(chunk, "chunk")
        self.patch = patch_side(self.area, tuple(model.input_size[1:]))
        self.spec = f"defense:patchcleanser?area={self.area:g}&k={k}&fill={self.fill:g}&base={model.spec}"
        self.register_buffer("masks", mask_set(tuple(model.input_size[1:]), self.patch, k).to(model.device),
                             persistent=False)

    def _masked_logits(self, x: torch.Tensor, image: torch.Tensor, first: torch.Tensor,
                       second: torch.Tensor | None = None) -> torch.Tensor:
        """The base model's logits on ``x[image[r]]`` with the pixels of masks ``first[r]`` (and ``second[r]``) set
        to ``fill``, for every row r, ``chunk`` rows at a time: each chunk's images and masks are built by index, so
        the R masked images and their masks never exist at once. image, first, second: R (indices) -> R x classes."""
        out, chunk = [], self.chunk or (64 if x.device.type == "cpu" else 1024)
        for rows in torch.arange(image.shape[0], device=x.device).split(chunk):
            hidden = self.masks[first[rows]] if second is None else self.masks[first[rows]] | self.masks[second[rows]]
            covered = hidden[:, None].to(x.dtype)
            out.append(self.base.logits(x[image[rows]] * (1 - covered) + self.fill * covered))
        return torch.cat(out) if out else x.new_zeros(0, self.num_classes)

    def _pair_labels(self, x: torch.Tensor, image: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """Labels of image ``image[d]`` under first-round mask ``first[d]`` and each mask j: D x K, no gradients."""
        k = self.masks.shape[0]
        with torch.no_grad():
            labels = self._masked_logits(x, image.repeat_interleave(k), first.repeat_interleave(k),
                                         torch.arange(k, device=x.device).repeat(first.shape[0]))
        return labels.argmax(-1).reshape(-1, k)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The defended logits (the base's on the chosen one-mask image), without input validation."""
        n, k = x.shape[0], self.masks.shape[0]
        every = torch.arange(n * k, device=x.device)
        with torch.no_grad():
            first = self._masked_logits(x, every // k, every % k).reshape(n, k, self.num_classes)
        labels = first.argmax(-1)  # N x K
        majority = labels.mode(1).values
        disagrees = labels != majority[:, None]
        rank = disagrees.long().cumsum(1) * disagrees  # 1, 2, ... for an image's disagreeing masks, in mask order
        winner = torch.zeros_like(disagrees)
        undecided = disagrees.any(1)
        for r in range(1, k):  # round r tries each undecided image's r-th disagreer, as a loop over them would
            image, mask = ((rank == r) & undecided[:, None]).nonzero(as_tuple=True)  # a host sync per round
            if image.numel() == 0:
                break
            agrees = (self._pair_labels(x, image, mask) == labels[image, mask][:, None]).all(1)
            winner.index_put_((image, mask), agrees)
            undecided.index_put_((image,), undecided[image] & ~agrees)  # the first disagreer that wins decides
        unanimous = (labels == labels[:, :1]).all(1)
        chosen = torch.where(unanimous, 0, torch.where(winner.any(1), winner.long().argmax(1),
                                                      (labels == majority[:, None]).long().argmax(1)))
        if torch.is_grad_enabled() and x.requires_grad:  # the chosen masked image again, with its graph
            return self._masked_logits(x, torch.arange(n, device=x.device), chosen)
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
            >>> from robust.defenses import PatchCleanser
            >>> from robust.models import load_model
            >>> defended = PatchCleanser(load_model("zoo:digits-m/resnet", "cpu"), area=0.02, k=4)
            >>> defended.certify(torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 2])).shape
            torch.Size([3])
        """
        return self.certified_labels(x) == y.to(x.device)

    def certified_labels(self, x: torch.Tensor) -> torch.Tensor:
        """Per image, the label all K^2 two-mask predictions agree on (the one label it is certified for), or -1
        where they disagree: ``certify(x, y)`` is ``certified_labels(x) == y``, for any labels y, without a second
        pass (x: N x 3 x H x W; returns N, long)."""
        n, k = x.shape[0], self.masks.shape[0]
        every = torch.arange(n * k, device=x.device)
        labels = self._pair_labels(x, every // k, every % k).reshape(n, k * k)
        return torch.where((labels == labels[:, :1]).all(1), labels[:, 0], -1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, area={self.area:g}, patch={self.patch}, k={self.k}, fill={self.fill:g}"


__all__ = ["PatchCleanser", "mask_set"]
