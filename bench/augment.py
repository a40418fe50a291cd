"""PatchMixing speed: our batched kornia augmentation against a straightforward per-sample Python loop, kornia's
RandomCutMixV2 and kornia's PatchMix (one square of side H / 2 from a partner: CutMix-style, where ours replaces a
random set of grid cells; images only, since kornia 0.9's PatchMix mixes no labels), on the same batch, p = 1
(every batch mixed), labels included for the others; and the floor, a bare ``x.clone()`` of the batch (a mix must at
least write one new batch).

Prints one JSON object on its last line. Usage: python bench/augment.py [--repeats 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch
from _timing import median_time

warnings.filterwarnings("ignore", category=DeprecationWarning)


def loop_patch_mixing(x: torch.Tensor, y: torch.Tensor, grid: int, low: float, high: float,
                      g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-sample reference: one image at a time, one cell at a time."""
    b, _, h, w = x.shape
    ch, cw = h // grid, w // grid
    perm = torch.randperm(b, generator=g)
    out, lam = x.clone(), torch.empty(b, device=x.device)
    for i in range(b):
        count = round(float(low + (high - low) * torch.rand(1, generator=g)) * grid * grid)
        for cell in torch.randperm(grid * grid, generator=g)[:count].tolist():
            r, c = divmod(cell, grid)
            rs, cs = slice(r * ch, (r + 1) * ch), slice(c * cw, (c + 1) * cw)
            out[i, :, rs, cs] = x[perm[i], :, rs, cs]
        lam[i] = 1 - count / (grid * grid)
    return out, torch.stack([y.float(), y[perm].float(), lam], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()

    from kornia.augmentation import PatchMix, RandomCutMixV2

    from robust.augment import PatchMixing

    dev = args.device
    rows = {}
    for b, size, grid in ((256, 32, 8), (64, 224, 14)):
        x, y = torch.rand(b, 3, size, size).to(dev), torch.randint(0, 10, (b,)).to(dev)
        ours = PatchMixing(grid, ratio=(0.0, 0.5), p=1.0)
        cutmix = RandomCutMixV2(p=1.0, data_keys=["input", "class"], use_correct_lambda=True)
        patchmix = PatchMix(patch_size=size // 2, p=1.0, data_keys=["input"])  # it mixes no labels
        g = torch.Generator().manual_seed(0)
        t_ours = median_time(lambda x=x, y=y, ours=ours: ours(x, y), args.repeats, dev)
        t_loop = median_time(lambda x=x, y=y, grid=grid, g=g: loop_patch_mixing(x, y, grid, 0.0, 0.5, g),
                             args.repeats, dev)
        t_cutmix = median_time(lambda x=x, y=y, cutmix=cutmix: cutmix(x, y), args.repeats, dev)
        t_patchmix = median_time(lambda x=x, patchmix=patchmix: patchmix(x), args.repeats, dev)
        t_clone = median_time(lambda x=x: x.clone(), args.repeats, dev)
        rows[f"{b}x3x{size}x{size}"] = {
            "grid": grid, "ours_ms": round(t_ours * 1e3, 3), "loop_ms": round(t_loop * 1e3, 3),
            "kornia_cutmix_ms": round(t_cutmix * 1e3, 3), "kornia_patchmix_ms": round(t_patchmix * 1e3, 3),
            "speedup_vs_loop": round(t_loop / t_ours, 1), "time_over_kornia_cutmix": round(t_ours / t_cutmix, 2),
            "time_over_kornia_patchmix": round(t_ours / t_patchmix, 2), "clone_ms": round(t_clone * 1e3, 3),
            "time_over_clone": round(t_ours / t_clone, 2)}
        print(json.dumps({f"{b}x3x{size}x{size}": rows[f"{b}x3x{size}x{size}"]}), flush=True)
    print(json.dumps({"device": dev, "threads": torch.get_num_threads(), "patch_mixing": rows}))


if __name__ == "__main__":
    main()
