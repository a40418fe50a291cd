"""imagenet-photos: the real colour photos bundled with scikit-image, labelled with their ImageNet-1k class.

Only photos whose subject is an ImageNet-1k class are included; each goes through a ``Preprocess`` (by default
the shorter side resized to 256/224 of 224 px, bicubic, and centre-cropped: the standard ImageNet evaluation
transform).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from robust.checks import InputError
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
        raise InputError(f"split={split!r} is not valid for imagenet-photos; expected 'test'.")
    import skimage.data

    preprocess = preprocess or Preprocess()
    images = torch.stack([preprocess(getattr(skimage.data, name)()) for name in PHOTOS])
    y = torch.tensor([label for label, _ in PHOTOS.values()])
    return ImageSet(images, y, imagenet_class_names(), name="imagenet-photos",
                    meta={"photos": list(PHOTOS), "preprocess": preprocess.to_dict()})


# imagenet-crops: seeded crops and flips of the real photos bundled with scikit-image and scikit-learn, split by
# photo (no photo gives crops to both splits). Most photos have no ImageNet-1k class, so every crop is labelled by
# the evaluated model's own clean top-1 ("decision" labels: an attack then asks whether the patch hijacks the
# model's decision); ``load_for(model, "imagenet-crops")`` gives them.
CROP_PHOTOS = {
    "test": ("chelsea", "coffee", "rocket", "astronaut", "sklearn:china", "stereo_motorcycle"),
    "train": ("sklearn:flower", "hubble_deep_field", "immunohistochemistry", "retina", "camera", "clock", "coins",
              "moon", "brick", "grass", "gravel", "page"),
}
CROPS_PER_PHOTO = {"test": 16, "train": 40}
CROP_SCALE = (0.5, 1.0)  # a crop's side, as a fraction of the photo's shorter side
CROP_SEED = 0
DECISION = "decision"  # meta["labels"] of a set labelled by each model's own clean top-1


@functools.cache
def bundled_photo(name: str) -> np.ndarray:
    """A photo shipped inside scikit-image (``skimage.data`` NAME; ``stereo_motorcycle``: its left frame) or
    scikit-learn (``sklearn:china``, ``sklearn:flower``) as uint8 H x W x 3 (grey photos repeated over the
    channels), read-only: decoded once per process (about 0.1 s a photo, and every crop set, stream and digits-m
    build asks for the same few), so a caller that changes it copies it first."""
    if name.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name.split(':', 1)[1]}.jpg")
    else:
        import skimage.data

        img = getattr(skimage.data, name)()
        img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disparity)
    img = np.asarray(img)
    img = np.ascontiguousarray(np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img[..., :3])
    img.setflags(write=False)
    return img


def crops(split: str = "test", preprocess: Preprocess | None = None) -> ImageSet:
    """``imagenet-crops``: ``CROPS_PER_PHOTO[split]`` seeded square crops (side ``CROP_SCALE`` of the shorter side,
    anywhere in the photo, flipped with probability 1/2) of each of ``CROP_PHOTOS[split]``, each through
    ``preprocess``, in a seeded order (so the first N sample every photo); labels -1 until a model's decision fills
    them (``robust.model_data.load_for``)."""
    from PIL import Image

    if split not in CROP_PHOTOS:
        raise InputError(f"split={split!r} is not valid for imagenet-crops; expected one of {tuple(CROP_PHOTOS)}.")
    preprocess = preprocess or Preprocess()
    rng = np.random.default_rng([CROP_SEED, tuple(CROP_PHOTOS).index(split)])
    images, sources = [], []
    for k, name in enumerate(CROP_PHOTOS[split]):
        photo = Image.fromarray(bundled_photo(name))
        w, h = photo.size
        for _ in range(CROPS_PER_PHOTO[split]):
            side = round(min(w, h) * rng.uniform(*CROP_SCALE))
            left, top = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            crop = photo.crop((left, top, left + side, top + side))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            images.append(preprocess(crop))
            sources.append(k)
    order = torch.from_numpy(rng.permutation(len(images)))  # the first N crops: a sample of every photo
    return ImageSet(torch.stack(images)[order], torch.full((len(images),), -1), imagenet_class_names(),
                    name="imagenet-crops", meta={"split": split, "photos": list(CROP_PHOTOS[split]),
                                                 "photo": torch.tensor(sources)[order].tolist(),
                                                 "labels": DECISION, "preprocess": preprocess.to_dict()})
