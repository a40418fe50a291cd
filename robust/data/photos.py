"""imagenet-photos: the real colour photos bundled with scikit-image, labelled with their ImageNet-1k class.

Only photos whose subject is an ImageNet-1k class are included; each is resized (shorter side 256/224 of the
target size, bicubic, antialiased) and centre-cropped, the standard ImageNet evaluation transform.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from robust.checks import check_int
from robust.data.base import ImageSet
from robust.data.imagenet import imagenet_class_names

# photo -> (ImageNet-1k index, why): labels are the photos' subjects, not any model's prediction.
PHOTOS = {
    "chelsea": (281, "Chelsea the tabby cat (tabby, tabby cat)"),
    "coffee": (967, "a cup of espresso"),
    "rocket": (657, "a SpaceX Falcon 9 on its pad (ImageNet's closest class: missile)"),
}


def _resize_crop(img: np.ndarray, size: int) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(img[..., :3])).permute(2, 0, 1)[None].float().div_(255)
    h, w = x.shape[-2:]
    scale = round(size * 256 / 224) / min(h, w)
    x = F.interpolate(x, size=(round(h * scale), round(w * scale)), mode="bicubic", antialias=True,
                      align_corners=False).clamp_(0, 1)
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[0, :, top:top + size, left:left + size]


def load(split: str = "test", image_size: int = 224) -> ImageSet:
    """The photos as a ``test`` set of ``image_size`` px images with ImageNet-1k labels."""
    if split != "test":
        raise ValueError(f"split={split!r} is not valid for imagenet-photos; expected 'test'.")
    check_int(image_size, "image_size", low=8)
    import skimage.data

    x = torch.stack([_resize_crop(getattr(skimage.data, name)(), image_size) for name in PHOTOS])
    y = torch.tensor([label for label, _ in PHOTOS.values()])
    images = (x * 255).round_().to(torch.uint8)
    return ImageSet(images, y, imagenet_class_names(), name="imagenet-photos", meta={"photos": list(PHOTOS)})
