"""In-memory image sets: uint8 storage, float [0,1] batches, class names attached."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset

from robust.checks import InputError, check_positive_int


class ImageSet(Dataset):
    """A labelled image set held in memory as uint8 ``N x 3 x H x W``; items are ``(float x in [0,1], int y)``."""

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
    """``(x, y)`` batches of the first ``limit`` items of any dataset: in-memory sets directly, others through a
    DataLoader."""
    if isinstance(data, ImageSet):
        yield from data.batches(batch_size, device, limit=limit)
        return
    from torch.utils.data import DataLoader, Subset

    n = len(data) if limit is None else min(limit, len(data))  # type: ignore[arg-type]
    for x, y in DataLoader(Subset(data, range(n)), batch_size=batch_size):
        yield x.to(device), torch.as_tensor(y).to(device)


__all__ = ["ImageSet", "iterate"]
