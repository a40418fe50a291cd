"""What the Backbone wrapper costs: its forward (normalisation + input checks) over the bare model forward.

Also times the digits-m build (goal: under 30 s). Prints one JSON object on its last line.
Usage: python bench/backbone.py [--repeats 20] [--batch 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch
from _timing import median_time

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()

    from robust.data import digits_m
    from robust.models import load_model

    start = time.perf_counter()
    digits_m.build()
    build_s = time.perf_counter() - start

    x = digits_m.load("test").batch(slice(0, args.batch), args.device)[0]
    rows = {}
    for arch in ("resnet", "vit", "mixer"):
        try:
            model = load_model(f"zoo:digits-m/{arch}", device=args.device)
        except ValueError:
            continue
        xn = (x - model._mean) / model._std
        with torch.no_grad():
            bare = median_time(lambda m=model, xn=xn: m.net(xn), args.repeats, args.device)
            wrapped = median_time(lambda m=model: m(x), args.repeats, args.device)
        rows[arch] = {"bare_ms": round(bare * 1e3, 2), "backbone_ms": round(wrapped * 1e3, 2),
                      "ratio": round(wrapped / bare, 3)}
    print(json.dumps({"digits_m_build_s": round(build_s, 2), "batch": args.batch, "device": args.device,
                      "forward": rows}))


if __name__ == "__main__":
    main()
