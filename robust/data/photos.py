"""imagenet-photos: the real colour photos bundled with scikit-image, labelled with their ImageNet-1k class.

Only photos whose subject is an ImageNet-1k class are included; each goes through a ``Preprocess`` (by default
the shorter side resized to 256/224 of 224 px, bicubic, and centre-cropped: the standard ImageNet evaluation
transform).
"""

from __future__ import annotations

import torch

from robust.data.base import ImageSet
from robust.data.imagenet import imagenet_class_names
from robust.data.preprocess import Preprocess

# photo -> (ImageNet-1k index, why): labels are the photos' subjects, not any model's prediction.
PHOTOS = {
    "chelsea": (281, "Chelsea the tabby cat (tabby, tabby cat)"),
    "coffee": (967, "a cup of espresso"),
    "rocket": (657, "a SpaceX Falcon 9 on its pad (ImageNet's closest class: missile)"),
}


def load(split: str = "test", preprocess: Preprocess | None = None) -> ImageSet:
    """The photos as a ``test`` set through ``preprocess`` (default: ``Preprocess()``, 224 px), with ImageNet-1k
    labels."""
    if split != "test":
        raise ValueError(f"split={split!r} is not valid for imagenet-photos; expected 'test'.")
    import skimage.data

    preprocess = preprocess or Preprocess()
    images = torch.stack([preprocess(getattr(skimage.data, name)()) for name in PHOTOS])
    y = torch.tensor([label for label, _ in PHOTOS.values()])
    return ImageSet(images, y, imagenet_class_names(), name="imagenet-photos",
                    meta={"photos": list(PHOTOS), "preprocess": preprocess.to_dict()})
