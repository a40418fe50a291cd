"""Datasets the user brings: any torchvision classification dataset by name, and any ImageFolder directory."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset

from robust.checks import InputError, first_line
from robust.io import cache_dir

if TYPE_CHECKING:
    from collections.abc import Callable

    from PIL import Image

    from robust.data.preprocess import Preprocess


def _transform(image_size: int | None, preprocess: Preprocess | None = None
               ) -> Callable[[Image.Image], torch.Tensor]:
    from torchvision import transforms as T

    if preprocess is not None:  # robust.data.Preprocess: PIL resize and crop to uint8, then [0, 1]
        return T.Lambda(lambda im: preprocess(im).float().div_(255))
    steps = [T.Lambda(lambda im: im.convert("RGB"))]
    if image_size is not None:
        steps += [T.Resize(image_size), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor()])


class _Labelled(Dataset):
    """A torchvision dataset with ``class_names`` and ``name`` attached (items: float x in [0,1], int y)."""

    def __init__(self, inner: Dataset, class_names: list[str], name: str):
        self.inner, self.class_names, self.name = inner, class_names, name

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.inner[i]
        return x, int(y)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def torchvision_dataset(name: str, split: str, image_size: int | None, root: str | Path | None,
                        download: bool, preprocess: Preprocess | None = None) -> _Labelled:
    import torchvision.datasets as tvd

    cls = getattr(tvd, name, None)
    available = sorted(n for n in tvd.__all__ if n[0].isupper())
    if cls is None or not inspect.isclass(cls):
        import difflib

        close = difflib.get_close_matches(name, available, n=3)
        raise InputError(f"torchvision dataset {name!r} does not exist"
                         + (f"; did you mean {', '.join(close)}?" if close else "."))
    root = Path(root) if root is not None else cache_dir("datasets", "torchvision", name)
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict = {"transform": _transform(image_size, preprocess)}
    if "train" in params:
        kwargs["train"] = split == "train"
    elif "split" in params:
        kwargs["split"] = split
    if "download" in params:
        kwargs["download"] = download
    try:
        ds = cls(str(root), **kwargs) if "root" in params else cls(**kwargs)  # FakeData has no root
    except Exception as e:  # missing files raise RuntimeError; failed downloads URLError / OSError
        raise InputError(f"torchvision dataset {name} ({split}) is not available: {first_line(e)}; without network, "
                         f"place its files under {str(root)!r} (or pass root=DIR).") from None
    count = getattr(ds, "num_classes", None)  # e.g. FakeData, which has neither classes nor targets
    classes = getattr(ds, "classes", None) or [str(i) for i in range(count if isinstance(count, int) else
                                                                      int(max(_targets(ds))) + 1)]
    return _Labelled(ds, list(classes), f"torchvision:{name}")


def _targets(ds: Dataset) -> list[int]:
    t = getattr(ds, "targets", None) or getattr(ds, "labels", None)
    if t is None:
        raise InputError(f"torchvision dataset {type(ds).__name__} exposes no class list or targets.")
    return [int(v) for v in t]


def image_folder(path: Path, split: str, image_size: int | None, preprocess: Preprocess | None = None
                 ) -> _Labelled:
    """An ImageFolder at ``path`` (or ``path/split`` when that exists): one sub-directory per class."""
    from torchvision.datasets import ImageFolder

    root = path / split if (path / split).is_dir() else path
    try:
        ds = ImageFolder(str(root), transform=_transform(image_size if image_size is not None else 224, preprocess))
    except (FileNotFoundError, RuntimeError) as e:
        raise InputError(f"image folder {str(root)!r} is not a dataset: {e}") from None
    return _Labelled(ds, list(ds.classes), f"folder:{root}")
