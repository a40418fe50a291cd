"""In-memory image sets: uint8 storage, float [0,1] batches, class names attached."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset

from robust.checks import InputError, check_positive_int


class ImageSet(Dataset):
    """A labelled image set held in memory as uint8 ``N x 3 x H x W``; items are ``(float x in [0, 1], int y)``.

    Besides the arguments it has ``num_classes`` and ``image_size`` ((C, H, W)); ``subset`` takes some items,
    ``batch`` and ``batches`` give float batches on a device without a DataLoader (the data is already in memory).

    Args:
        images: the images, uint8 in [0, 255].
        labels: one class index per image (kept as int64).
        class_names: one name per class.
        name: the dataset's name, as boards and messages show it.
        meta: anything else about the set (kept as a copy: e.g. ``split``, ``labels``, ``preprocess``).

    Raises:
        InputError: images that are not uint8 N x C x H x W, or labels that are not one per image.

    Shape:
        images: N x C x H x W (uint8); labels: N; an item's x is C x H x W (float in [0, 1]).

    Examples:
        >>> import torch
        >>> from robust.data.base import ImageSet
        >>> data = ImageSet(torch.full((4, 3, 8, 8), 255, dtype=torch.uint8), torch.tensor([0, 1, 1, 0]),
        ...                 ["cat", "dog"], "toy")
        >>> data
        ImageSet('toy', n=4, size=(3, 8, 8), classes=2)
        >>> x, y = data[1]
        >>> tuple(x.shape), float(x.max()), y, data.class_names[y]
        ((3, 8, 8), 1.0, 1, 'dog')
        >>> [tuple(x.shape) for x, y in data.batches(3)]
        [(3, 3, 8, 8), (1, 3, 8, 8)]
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], name: str,
                 meta: dict | None = None):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise InputError(f"images has dtype {images.dtype} and shape {tuple(images.shape)}; "
                             "expected uint8 N x C x H x W.")
        if labels.shape != (images.shape[0],):
            raise InputError(f"labels has shape {tuple(labels.shape)}; expected ({images.shape[0]},).")
        self.images = images
        self.labels = labels.long()
        self.class_names = list(class_names)
        self.name = name
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].float().div_(255), int(self.labels[i])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor | slice) -> ImageSet:
        """The items at ``index`` as a new set (same classes and metadata)."""
        return ImageSet(self.images[index], self.labels[index], self.class_names, self.name, self.meta)

    def batch(self, index: torch.Tensor | slice, device: torch.device | str | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float in [0,1]) and labels at ``index``, moved to ``device``."""
        x = self.images[index].to(device, non_blocking=True)
        return x.float().div_(255), self.labels[index].to(device, non_blocking=True)

    def batches(self, batch_size: int, device: torch.device | str | None = None, shuffle: bool = False,
                generator: torch.Generator | None = None, limit: int | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate over ``(x, y)`` batches without a DataLoader (the data is already in memory)."""
        check_positive_int(batch_size, "batch_size")
        n = len(self) if limit is None else min(limit, len(self))
        order = torch.randperm(len(self), generator=generator)[:n] if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            yield self.batch(order[start:start + batch_size], device)

    def __repr__(self) -> str:
        return f"ImageSet({self.name!r}, n={len(self)}, size={self.image_size}, classes={self.num_classes})"


def iterate(data: Dataset, batch_size: int, device: torch.device | str | None = None, limit: int | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches of the first ``limit`` items of any dataset, in order.

    An in-memory ``ImageSet`` is batched directly (``ImageSet.batches``); any other dataset goes through a
    DataLoader over its first ``limit`` items.

    Args:
        data: an ``ImageSet`` or any torch Dataset of ``(x, y)`` items.
        batch_size: the items per batch (the last batch may be smaller).
        device: where the batches go (None: where they are, the CPU for a DataLoader).
        limit: how many items from the start (None: all of them).

    Returns:
        An iterator of ``(x, y)`` batches.

    Raises:
        InputError: a batch size that is not a positive integer (for an ``ImageSet``).

    Shape:
        x: B x C x H x W (float in [0, 1] from an ``ImageSet``; as the dataset gives it otherwise); y: B, the
        labels; B <= batch_size.

    Examples:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> from robust.data.base import iterate
        >>> data = TensorDataset(torch.rand(5, 3, 8, 8), torch.tensor([0, 1, 2, 3, 4]))
        >>> [(tuple(x.shape), y.tolist()) for x, y in iterate(data, 2, limit=3)]
        [((2, 3, 8, 8), [0, 1]), ((1, 3, 8, 8), [2])]
    """
    if isinstance(data, ImageSet):
        yield from data.batches(batch_size, device, limit=limit)
        return
    from torch.utils.data import DataLoader, Subset

    n = len(data) if limit is None else min(limit, len(data))  # type: ignore[arg-type]
    for x, y in DataLoader(Subset(data, range(n)), batch_size=batch_size):
        yield x.to(device), torch.as_tensor(y).to(device)


__all__ = ["ImageSet", "iterate"]
