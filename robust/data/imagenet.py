"""ImageNet-1k class names and synsets, in index order (from timm's bundled ImageNet metadata, so offline)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def _info() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return (tuple(info.index_to_description(i) for i in range(1000)),
            tuple(info.index_to_label_name(i) for i in range(1000)))


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class descriptions, e.g. index 967 is 'espresso'."""
    return list(_info()[0])


@functools.lru_cache(maxsize=1)
def synset_index() -> dict[str, int]:
    """WordNet synset -> ImageNet-1k index (the sorted order of the 1,000 synsets), e.g. 'n01440764' -> 0."""
    return {s: i for i, s in enumerate(_info()[1])}
