"""Per-image random draws: every number depends only on (seed, stream, image index, position), never on the batch.

Evaluations and attacks draw each image's randomness (its target, noise, window, donor image, random start)
from a counter-based hash (murmur3's 32-bit finaliser, chained) of the seed, a stream name, the image's index in
the evaluated set and the position inside the draw, computed on the images' device. So the same seed gives the
same figure at any batch size, on any device, in any order of batches; training keeps ``torch.Generator`` draws.

``Pool`` holds the evaluated set by index, so that a donor image (the natural-patch control, the patch-mixing
attack) comes from the whole set, not from the batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch.utils.data import Dataset

from robust.data.base import ImageSet

_M32 = 0xFFFFFFFF
T = TypeVar("T")


def _mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """(h * c) mod 2**32 for int64 tensors holding 32-bit values, without int64 overflow (16-bit halves of c)."""
    return (h * (c & 0xFFFF) + (((h * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _mix(h: torch.Tensor) -> torch.Tensor:
    """murmur3's fmix32: a bijection of 32-bit values with full avalanche."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def _key(seed: int, stream: str) -> tuple[int, int]:
    digest = hashlib.blake2b(f"{seed}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")


def hashes(seed: int, stream: str, index: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform 32-bit values for each image of ``index``: a counter-based hash of (seed, stream, index, position).

    murmur3's 32-bit finaliser, chained over the image's index, a key from ``seed`` and ``stream`` and each position
    of ``shape``, computed on ``index``'s device. An image's values depend on its own index only, never on the batch
    it is in. ``Draws`` turns them into floats and integers.

    Args:
        seed: the seed.
        stream: the name of what is drawn (e.g. ``'target'``, ``'noise'``): each stream's numbers are independent.
        index: the images' indices in the evaluated set.
        shape: the values each image gets.

    Returns:
        Integers in [0, 2**32) as int64, on ``index``'s device.

    Shape:
        index: N; returns N x *shape.

    Examples:
        >>> import torch
        >>> from robust.draws import hashes
        >>> h = hashes(0, "noise", torch.tensor([0, 1, 2]), (2,))
        >>> h.tolist()
        [[329470569, 735161505], [3547502314, 4185067219], [751352615, 1333261313]]
        >>> torch.equal(hashes(0, "noise", torch.tensor([2]), (2,)), h[2:])  # image 2's values, in any batch
        True
    """
    k1, k2 = _key(seed, stream)
    h = _mix((index.long() & _M32) ^ k1)
    pos = torch.arange(math.prod(shape), device=index.device)
    return _mix(_mix(h[:, None] ^ pos) ^ k2).view(index.shape[0], *shape)


class Pool:
    """The evaluated images, by index, so that a donor image comes from the whole set, not from the batch.

    It holds the first ``n`` items of ``data`` (an ``ImageSet`` is read in place, any other dataset item by item;
    its labels from ``targets`` when it has them), or a batch ``(x, y)`` itself. ``labels`` holds their labels,
    ``images(index, device)`` gives the images at some indices and ``by_class(device)`` the pool sorted by label
    (what ``Draws.other_class`` draws from), computed once per device.

    Args:
        data: a dataset of ``(x, y)`` items, or a batch ``(x, y)``.
        n: how many items from the start of a dataset (None: all of them); ignored for a batch.

    Shape:
        a batch: x is N x C x H x W (float in [0, 1]), y is N; ``images(index, device)`` returns len(index) x C x H x W.

    Examples:
        >>> import torch
        >>> from robust.draws import Pool
        >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 1, 2])
        >>> pool = Pool((x, y))
        >>> len(pool), torch.equal(pool.images(torch.tensor([3, 0]), "cpu"), x[[3, 0]])
        (4, True)
        >>> labels, order, counts, starts = pool.by_class("cpu")
        >>> counts.tolist(), starts.tolist()
        ([1, 2, 1], [0, 1, 3])
    """

    def __init__(self, data: Dataset | tuple[torch.Tensor, torch.Tensor], n: int | None = None):
        self._data = data
        self._on: dict[str, tuple[torch.Tensor, ...]] = {}  # device -> labels, order, counts, starts
        if isinstance(data, tuple):
            self.labels = data[1].detach().long()
        elif isinstance(data, ImageSet):
            self.labels = data.labels[:n]
        else:
            size = len(data) if n is None else min(n, len(data))  # type: ignore[arg-type]
            targets = getattr(data, "targets", None)
            labels = targets[:size] if targets is not None else [data[i][1] for i in range(size)]
            self.labels = torch.as_tensor(labels).long()

    def __len__(self) -> int:
        return self.labels.shape[0]

    def by_class(self, device: torch.device | str) -> tuple[torch.Tensor, ...]:
        """On ``device``, once per pool: the labels, the pool's indices sorted by label, each class's count and
        where its run starts in that order."""
        key = str(device)
        if key not in self._on:
            labels = self.labels.to(device)
            counts = torch.bincount(labels)
            self._on[key] = (labels, labels.argsort(stable=True), counts, counts.cumsum(0) - counts)
        return self._on[key]

    def images(self, index: torch.Tensor, device: torch.device | str) -> torch.Tensor:
        """The images (float in [0, 1]) at ``index`` on ``device``."""
        if isinstance(self._data, tuple):
            return self._data[0][index.to(self._data[0].device)].to(device)
        if isinstance(self._data, ImageSet):
            return self._data.batch(index.cpu(), device)[0]
        return torch.stack([torch.as_tensor(self._data[int(i)][0]) for i in index.tolist()]).to(device)


@dataclasses.dataclass(frozen=True)
class Draws:
    """The random draws of a batch: every number depends on (seed, stream, the image's index, position) only.

    An attack's ``run`` and an evaluation's ``parameters`` receive one and draw each image's randomness from it
    (targets, noise, windows, donors, random starts), so a figure does not depend on the batch size, the order of
    batches or the device. Numbers come from a counter-based hash (murmur3's finaliser) computed on the images'
    device; ``uniform``, ``integers``, ``other`` (another image of the pool) and ``other_class`` (an image of another
    class) draw them, ``child`` and ``subset`` derive draws for a stream of their own or some of the images.

    Attributes:
        seed: the seed of every draw.
        index: the images' indices in ``pool``.
        pool: the evaluated set (``robust.draws.Pool``), where donor images come from.
        prefix: the stream prefix ``child`` adds.

    Shape:
        index is N; ``uniform(stream, *shape)`` and ``integers(stream, high, *shape)`` return N x *shape.

    Examples:
        >>> import torch
        >>> from robust.draws import Draws
        >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
        >>> draws = Draws.of_batch(seed=0, x=x, y=y)
        >>> u = draws.uniform("noise", 2)
        >>> tuple(u.shape), torch.equal(draws.subset(torch.tensor([2, 3])).uniform("noise", 2), u[2:])
        ((4, 2), True)
    """

    seed: int
    index: torch.Tensor
    pool: Pool
    prefix: str = ""

    def child(self, name: str) -> Draws:
        """The same images' draws in a stream of their own (e.g. one per level of a sweep)."""
        return dataclasses.replace(self, prefix=f"{self.prefix}{name}/")

    def subset(self, rows: torch.Tensor) -> Draws:
        """The draws of some of the images (rows of the batch): each keeps its own numbers."""
        return dataclasses.replace(self, index=self.index[rows])

    @classmethod
    def of_batch(cls, seed: int, x: torch.Tensor, y: torch.Tensor) -> Draws:
        """A batch on its own: its images are the evaluated set, indexed 0..N-1."""
        return cls(seed, torch.arange(x.shape[0], device=x.device), Pool((x, y)))

    def uniform(self, stream: str, *shape: int) -> torch.Tensor:
        """N x *shape float32 numbers in [0, 1) (24 bits each)."""
        return (hashes(self.seed, self.prefix + stream, self.index, shape) >> 8).float() * 2.0 ** -24

    def integers(self, stream: str, high: int | torch.Tensor, *shape: int) -> torch.Tensor:
        """N x *shape integers uniform in [0, high) (``high``: one bound, or one per image)."""
        u = hashes(self.seed, self.prefix + stream, self.index, shape).double() * 2.0 ** -32
        if isinstance(high, torch.Tensor):  # a Python number stays one: no copy to the device (a host sync on CUDA)
            high = high.to(u.device).double().reshape(-1, *([1] * len(shape)))
        return (u * high).long()

    def other(self, stream: str) -> torch.Tensor:
        """Per image, the pool index of another image of the pool, uniformly (itself when the pool holds one)."""
        k = self.integers(stream, max(1, len(self.pool) - 1))
        return torch.where((len(self.pool) > 1) & (k >= self.index), k + 1, k)

    def other_class(self, stream: str, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image of label ``y`` (a label of the pool), the pool index of a uniformly drawn pool image of another
        class, and whether one exists: the k-th image not of class c is found by skipping c's run in the pool's
        order by label."""
        labels, order, counts, start = self.pool.by_class(y.device)
        own = counts[y]
        k = self.integers(stream, (len(labels) - own).clamp_min(1))
        pick = torch.where(k < start[y], k, k + own)
        return order[pick.clamp_max(len(labels) - 1)], own < len(labels)


def seeded(factory: Callable[[], T], seed: int) -> T:
    """Call ``factory()`` (a network to initialise) with the global RNG seeded by ``seed``, the caller's RNG untouched.

    The CPU generator and, when CUDA is available, every CUDA generator are forked (``torch.random.fork_rng``):
    what the factory draws is the same on every call, and the caller's random state is as it was afterwards
    (``torch.manual_seed`` seeds them all, so each is saved and restored).

    Args:
        factory: a callable without arguments.
        seed: the seed of the global generators during the call.

    Returns:
        What ``factory()`` returns.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from robust.draws import seeded
        >>> a, b = seeded(lambda: nn.Linear(3, 2), seed=0), seeded(lambda: nn.Linear(3, 2), seed=0)
        >>> torch.equal(a.weight, b.weight)
        True
    """
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        torch.manual_seed(seed)
        return factory()


__all__ = ["Draws", "Pool", "hashes", "seeded"]
