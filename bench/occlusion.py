"""Occlusion sweeps against the bare model forward passes they would need with every point measured under every
seed, on the same images in one run: a full random patch-drop sweep (10 levels), a full patch-mixing sweep
(6 ratios) and a salient-drop sweep (10 levels, one Grad-CAM per batch), each with 3 seeds, over the time of
3 x points plain forward passes on the clean batches. A point no draw changes (level or ratio 0; every level of
salient-drop) is measured once for the 3 seeds: ``forwards_run`` counts the passes a sweep makes.

Prints one JSON object on its last line.
Usage: python bench/occlusion.py [--samples 1000] [--models resnet,vit] [--batch 250] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch
from _timing import synchronize

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--models", default="resnet,vit")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()

    from robust.data import load_dataset
    from robust.evaluations import PatchDrop, PatchMixingCurve
    from robust.models import load_model

    data = load_dataset("digits-m", "test").subset(slice(0, args.samples))
    dev = args.device
    out = {}
    for name in args.models.split(","):
        model = load_model(f"zoo:digits-m/{name}", device=dev)
        row = {}
        if torch.device(dev).type == "cuda":  # one untimed forward: CUDA's kernel loading is not the sweep's cost
            with torch.no_grad():
                model.logits(data.batch(slice(0, args.batch), dev)[0])
            synchronize(dev)
        for label, sweep, points in (("patch_drop", PatchDrop(seeds=3), 10),
                                     ("patch_mixing", PatchMixingCurve(seeds=3), 6),
                                     ("salient_drop", PatchDrop(order="salient", seeds=3), 10)):
            plan = sweep.plan(model)
            shared = sum(sweep.seed_free(plan, knob) for knob in plan.knobs)
            start = time.perf_counter()
            sweep(model, data, batch_size=args.batch)
            synchronize(dev)
            t_sweep = time.perf_counter() - start
            start = time.perf_counter()
            with torch.no_grad():
                for _ in range(3 * points):
                    for x, _y in data.batches(args.batch, dev):
                        model.logits(x)
            synchronize(dev)
            t_bare = time.perf_counter() - start
            row[label] = {"sweep_s": round(t_sweep, 2), "bare_forwards_s": round(t_bare, 2),
                          "over_bare_forwards": round(t_sweep / t_bare, 3), "forwards": 3 * points * args.samples,
                          "forwards_run": (3 * points - 2 * shared) * args.samples}
        out[name] = row
        print(json.dumps({name: row}), flush=True)
    print(json.dumps({"samples": args.samples, "device": dev, "threads": torch.get_num_threads(), "occlusion": out}))


if __name__ == "__main__":
    main()
