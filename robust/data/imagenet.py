"""ImageNet-1k class names, in index order (from timm's bundled ImageNet metadata, so offline)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(1000))


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class descriptions, e.g. index 967 is 'espresso'."""
    return list(_names())
