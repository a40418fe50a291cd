"""PGD's early stop: what dropping finished images from the batch every k steps costs or saves, measured in one run.

``robust.attacks.lp.pgd`` runs sync-free masked steps (``pgd_step``) and drops the finished images every
``COMPACT_EVERY`` steps (one host sync each time). k = 1 is the batch shrunk at every step (a sync per step, as
before issue 31); k = steps + 1 never shrinks it (no sync within a restart, every image computed to the end). Per
model: seconds of PGD-10 and of PGD-20 x 2 restarts (targeted) on the same images for each k, the ratio to k = 1, and
whether every k gives the same adversarial images. One JSON line last.

    python bench/pgd_compaction.py > bench/results/DATE-cpu/pgd-compaction.txt
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import robust.attacks.lp as lp
from robust.attacks import make_attack
from robust.data import load_dataset
from robust.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--models", default="resnet,vit,mixer")
    ap.add_argument("--every", default="1,2,4,8,100")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    x, y = load_dataset("digits-m", "test").batch(slice(0, args.images))
    ks = [int(k) for k in args.every.split(",")]
    out: dict = {"images": args.images, "device": args.device, "threads": torch.get_num_threads(), "models": {}}
    for name in args.models.split(","):
        model = load_model(f"zoo:digits-m/{name}", args.device)
        for label, options in (("pgd10", {}), ("pgd20x2-targeted", {"steps": 20, "restarts": 2, "targeted": True})):
            attack = make_attack("pgd-linf-8", **options)
            row, first = {}, None
            for k in ks:
                lp.COMPACT_EVERY = k
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    x_adv = attack(model, x, y).x_adv
                    times.append(time.perf_counter() - start)
                first = x_adv if first is None else first
                row[k] = {"seconds": round(sorted(times)[len(times) // 2], 3), "same": bool(torch.equal(x_adv, first))}
            for k in ks:
                row[k]["over_k1"] = round(row[k]["seconds"] / row[ks[0]]["seconds"], 3)
            out["models"].setdefault(name, {})[label] = row
            print(name, label, {k: (v["seconds"], v["over_k1"], v["same"]) for k, v in row.items()}, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
