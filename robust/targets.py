"""The target protocols of the patch-attack literature, by name: the ImageNet-1k classes a targeted attack aims at,
so that a figure can be compared with a paper's. Each image draws its target uniformly from the set's classes other
than its own label (per image, from the attack's seed and the image's index; ``robust.attacks.sample_targets``).
"""

from __future__ import annotations

#: name -> (ImageNet-1k class indices, what the protocol is); tests/test_attacks.py checks each index's class name
TARGET_SETS: dict[str, tuple[tuple[int, ...], str]] = {
    "toaster": ((859,), "'toaster', the target of Brown et al.'s adversarial patch (2017)"),
    "imagenet-patch": ((804, 513, 923, 954, 968, 878, 546, 585, 806, 487),
                       "the 10 targets of ImageNet-Patch (Pintor et al. 2023)"),
    "n8": ((150, 426, 843, 715, 952, 507, 590, 62), "the 8 targets (N8) of the generative-patch papers"),
}

__all__ = ["TARGET_SETS"]
