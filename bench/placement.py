"""Batched ``paste`` and ``windows`` against a straightforward per-sample Python loop, on the same batch.

Prints one JSON object on its last line. Usage: python bench/placement.py [--repeats 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import json

import torch
from _timing import median_time

from robust.placement import paste, random_boxes, windows


def paste_loop(x: torch.Tensor, patch: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    out = x.clone()
    for i, (t, left, h, w) in enumerate(boxes.tolist()):
        out[i, :, t:t + h, left:left + w] = patch[i]
    return out


def windows_loop(sal: torch.Tensor, side: int) -> torch.Tensor:
    boxes = []
    for s in sal:
        scores = s.double().unfold(0, side, 1).unfold(1, side, 1).mean((-1, -2))  # every window of one image
        idx = int(scores.argmax())
        boxes.append([idx // scores.shape[1], idx % scores.shape[1], side, side])
    return torch.tensor(boxes, device=sal.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()
    dev = args.device
    g = torch.Generator().manual_seed(0)
    rows = {}
    for n, size, side in ((256, 32, 9), (64, 224, 63)):
        x = torch.rand(n, 3, size, size, generator=g).to(dev)
        patch = torch.rand(n, 3, side, side, generator=g).to(dev)
        sal = torch.rand(n, size, size, generator=g).to(dev)
        boxes = random_boxes(torch.rand(n, 2, generator=g).to(dev), (size, size), side)
        assert torch.equal(paste(x, patch, boxes), paste_loop(x, patch, boxes))
        assert torch.equal(windows(sal, side), windows_loop(sal, side))
        batched = median_time(lambda x=x, patch=patch, boxes=boxes: paste(x, patch, boxes), args.repeats, dev)
        loop = median_time(lambda x=x, patch=patch, boxes=boxes: paste_loop(x, patch, boxes), args.repeats, dev)
        wb = median_time(lambda sal=sal, side=side: windows(sal, side), args.repeats, dev)
        wl = median_time(lambda sal=sal, side=side: windows_loop(sal, side), 5, dev)
        rows[f"{n}x3x{size}x{size}"] = {
            "paste_ms": round(batched * 1e3, 2), "paste_loop_ms": round(loop * 1e3, 2),
            "paste_speedup": round(loop / batched, 2), "windows_ms": round(wb * 1e3, 2),
            "windows_loop_ms": round(wl * 1e3, 2), "windows_speedup": round(wl / wb, 2)}
    print(json.dumps({"device": dev, "placement": rows}))


if __name__ == "__main__":
    main()
