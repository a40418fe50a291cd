"""Datasets: ``load_dataset(name, split)`` returns a torch Dataset of ``(float x in [0,1], int y)`` items that
carries ``class_names`` and ``name``.

Names: ``digits-m`` (embedded default, built offline from real data), ``imagenet-photos`` (real photos with
ImageNet labels), ``imagenet-val:PATH[?subset=...]`` (ImageNet validation images in any usual layout, labelled by
synset; robust.data.imagenet_val), ``torchvision:NAME`` (e.g. ``torchvision:CIFAR10``) and a path to an
ImageFolder directory. Photos are resized and centre-cropped by a ``Preprocess`` (a model's own: its
``Backbone.preprocess``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from robust.checks import FIXED_SIZE_DATA, InputError, check_int, did_you_mean
from robust.data import digits_m, imagenet_val, photos
from robust.data.base import ImageSet
from robust.data.preprocess import Preprocess

if TYPE_CHECKING:
    from robust.data.external import _Labelled

EMBEDDED = {
    "digits-m": "5,000 real MNIST digits blended onto real photos (MNIST-M style), 3x32x32, 10 classes; "
                "train 4,000 digits x 5 backgrounds (= fit 3,500 + val 500 held-out digits), test 1,000 other digits",
    "imagenet-photos": f"{len(photos.PHOTOS)} real photos from scikit-image with their ImageNet-1k class, 3x224x224",
    "imagenet-crops": f"seeded crops and flips of real photos from scikit-image and scikit-learn, split by photo: test "
                      f"{len(photos.CROP_PHOTOS['test'])} photos x {photos.CROPS_PER_PHOTO['test']}, train "
                      f"{len(photos.CROP_PHOTOS['train'])} x {photos.CROPS_PER_PHOTO['train']}; 3x224x224 (or the "
                      "model's size); labelled by each model's own clean top-1 (decision labels)",
}
SPLITS = ("train", "test")  # every dataset; digits-m also has "fit" and "val" (digits_m.SPLITS)


def resizable(name: str) -> bool:
    """Whether dataset ``name`` is photos resized for a model, so that it takes a ``preprocess``.

    Every name but digits-m's is (``robust.checks.FIXED_SIZE_DATA``): digits-m is 32 px only. The name is not looked
    up, so an unknown name is resizable too.

    Args:
        name: a dataset name as ``load_dataset`` takes it (``digits-m``, ``imagenet-photos``,
            ``torchvision:CIFAR10``...).

    Returns:
        True when ``load_dataset(name, preprocess=...)`` may resize its images, False for a fixed-size dataset.

    Examples:
        >>> from robust.data import resizable
        >>> resizable("digits-m"), resizable("imagenet-photos"), resizable("torchvision:CIFAR10")
        (False, True, True)
    """
    return name not in FIXED_SIZE_DATA


def load_dataset(name: str, split: str = "test", *, image_size: int | None = None,
                 preprocess: Preprocess | None = None, root: str | None = None,
                 download: bool = True) -> ImageSet | _Labelled:
    """Load a split of dataset ``name`` as a torch ``Dataset`` of ``(x, y)`` items.

    Args:
        name: ``digits-m`` (the embedded default: real digits on real photos, 32 px, 10 classes),
            ``imagenet-photos`` and ``imagenet-crops`` (embedded real photos with ImageNet-1k classes),
            ``imagenet-val:PATH`` (ImageNet validation images in any usual layout), ``torchvision:NAME`` (e.g.
            ``torchvision:CIFAR10``) or the path of an ImageFolder directory.
        split: ``train`` or ``test``; digits-m also has ``fit`` and ``val`` (the training digits without, and only,
            its held-out validation digits, for choosing recipes).
        image_size: the side photos are resized and centre-cropped to (the default transform for that size);
            digits-m is 32 px only.
        preprocess: the transform of photos instead (a model's own: ``model.preprocess``).
        root: where a ``torchvision:`` dataset is stored (default: robust's cache).
        download: whether a ``torchvision:`` dataset may be downloaded when missing.

    Returns:
        The dataset, with ``name`` and ``class_names``.

    Raises:
        InputError: an unknown name or split, or a size the dataset cannot take.

    Shape:
        Each item: x is 3 x H x W (float, in [0, 1]); y an int class index.

    Examples:
        >>> from robust.data import load_dataset
        >>> data = load_dataset("digits-m", "test")
        >>> x, y = data[0]
        >>> len(data), tuple(x.shape), y, data.class_names[y]
        (1000, (3, 32, 32), 5, '5')
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"dataset name {name!r} is not valid; expected one of {sorted(EMBEDDED)}, "
                         "'imagenet-val:PATH', 'torchvision:NAME' or an ImageFolder path.")
    if image_size is not None:
        check_int(image_size, "image_size", low=8, expected="an integer >= 8 or None")
    if preprocess is not None:
        if not isinstance(preprocess, Preprocess):
            raise InputError(f"preprocess={preprocess!r} is not valid; expected a robust.data.Preprocess or None.")
        if not resizable(name):
            raise InputError(f"preprocess={preprocess} is not valid for {name!r}, whose images have one size; "
                             "expected None.")
        if image_size not in (None, preprocess.size):
            raise InputError(f"image_size={image_size!r} is not valid with preprocess={preprocess}; expected None or "
                             f"{preprocess.size}.")
    sized = preprocess or (Preprocess.for_size(image_size) if image_size is not None else None)  # photos' transform
    if name.startswith(imagenet_val.PREFIX):
        return imagenet_val.load(name, split, sized)
    expected = digits_m.SPLITS if name == "digits-m" else SPLITS  # imagenet-crops: the same two
    if split not in expected:
        raise InputError(f"split={split!r} is not valid for {name!r}; expected one of {expected}"
                         + ("" if name == "digits-m" else " ('fit' and 'val' are digits-m's)") + ".")
    if name == "digits-m":
        if image_size not in (None, digits_m.SIZE):
            raise InputError(f"image_size={image_size!r} is not valid for digits-m; it is {digits_m.SIZE} px.")
        return digits_m.load(split)
    if name == "imagenet-photos":
        return photos.load(split, sized)
    if name == "imagenet-crops":
        return photos.crops(split, sized)
    if name.startswith("torchvision:"):
        from robust.data.external import torchvision_dataset

        return torchvision_dataset(name.split(":", 1)[1], split, image_size, root, download, preprocess)
    if Path(name).expanduser().is_dir():
        from robust.data.external import image_folder

        return image_folder(Path(name).expanduser(), split, image_size, preprocess)
    raise InputError(f"dataset {name!r} is unknown{did_you_mean(name, EMBEDDED)}; expected one of {sorted(EMBEDDED)}, "
                     "'imagenet-val:PATH', 'torchvision:NAME' or the path of an existing ImageFolder directory.")


def label_source(data: object) -> str:
    """Where a dataset's labels come from: its ``meta["labels"]``, else ``'ground truth'``.

    A set labelled by each model's own clean top-1 (``imagenet-crops``) says ``'decision'``; imagenet-val says
    ``'ImageNet-1k ground truth (synset)'``; a dataset without ``meta`` (digits-m, torchvision's) is ground truth.

    Args:
        data: any dataset; only its ``meta`` attribute (a dict, when it has one) is read.

    Returns:
        ``'decision'``, ``'ground truth'`` or the dataset's own words for its labels.

    Examples:
        >>> import torch
        >>> from robust.data import ImageSet, label_source, load_dataset
        >>> label_source(load_dataset("digits-m"))
        'ground truth'
        >>> crops = ImageSet(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.tensor([0]), ["a"], "toy",
        ...                  meta={"labels": "decision"})
        >>> label_source(crops)
        'decision'
    """
    return (getattr(data, "meta", None) or {}).get("labels", "ground truth")


__all__ = ["EMBEDDED", "ImageSet", "Preprocess", "label_source", "load_dataset", "resizable"]
