"""TCS*: the strongest per-image patch attack per model, and the generator measured against it (issue 14).

For each model, at 12 % (Grad-CAM window, random targets, seed 0), on the same images:
- LaVAN (Adam, learning rate 0.1, CW margin: its defaults) with 20 and 100 steps (the board's budget), and the
  reference (the preset ``lavan-ref-12pct``): ``--ref-steps`` steps of ``--ref-optimizer`` x ``--ref-restarts``
  random restarts, each image stopping once its target holds by ``--ref-margin`` logits and keeping its best
  patch over all restarts. Its TCS is TCS*;
- the shipped gan-patch generator alone (one forward) and refined by 10 steps, where the model has one.
Each row gives TCS with its Wilson interval and the seconds per image (wall time / images, on this device).

LaVAN's defaults and the reference's optimizer were chosen on ``--split val`` against victims trained on ``fit``
(``file:`` specs from ``bench/selection.py --out-dir``); the figures reported are on test, with the shipped models.
Prints one line per measurement and one JSON object on its last line.
Usage: python bench/reference.py [--models resnet,vit,mixer] [--samples 1000] [--split test|val]
       [--ref-steps 500] [--ref-restarts 2] [--ref-optimizer adam|sign] [--ref-step-size 0.1] [--ref-loss cw|ce]
       [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore", category=FutureWarning)

ZOO = "resnet,resnet-8ep,resnet-pm,vit,vit-pm,mixer,mixer-pm,poolformer,convmixer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=ZOO, help="digits-m zoo names or model specs (file:...)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--split", default="test", choices=("test", "val"))
    parser.add_argument("--attacks", default="lavan-20,lavan-100,ref,gan,gan-refine-10")
    parser.add_argument("--ref-steps", type=int, default=500)
    parser.add_argument("--ref-restarts", type=int, default=2)
    parser.add_argument("--ref-optimizer", default="adam", choices=("sign", "adam"))
    parser.add_argument("--ref-step-size", type=float, default=0.1)
    parser.add_argument("--ref-loss", default="cw", choices=("cw", "ce"))
    parser.add_argument("--ref-margin", type=float, default=0.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from robust.attacks import evaluate, make_attack
    from robust.attacks.artifacts import list_artifacts, resolve_checkpoint
    from robust.attacks.gan import GanPatch
    from robust.data import load_dataset
    from robust.models import load_model

    data = load_dataset("digits-m", args.split)
    ref = {"steps": args.ref_steps, "restarts": args.ref_restarts, "optimizer": args.ref_optimizer,
           "step_size": args.ref_step_size, "loss": args.ref_loss, "margin": args.ref_margin}
    out: dict = {"split": args.split, "samples": args.samples, "device": args.device, "seed": 0, "area": 0.12,
                 "reference": ref, "models": {}}
    wanted = args.attacks.split(",")
    for name in args.models.split(","):
        model = load_model(name if ":" in name else f"zoo:digits-m/{name}", device=args.device)
        attacks = {"lavan-20": make_attack("lavan", steps=20, area=0.12),
                   "lavan-100": make_attack("lavan", steps=100, area=0.12),
                   "ref": make_attack("lavan", area=0.12, **ref)}
        artifact = f"digits-m/{name}/gan-patch-12pct"
        if ":" not in name and artifact in list_artifacts():
            path = resolve_checkpoint(f"zoo:{artifact}")
            attacks.update({"gan": GanPatch.load(path), "gan-refine-10": GanPatch.load(path, refine=10)})
        rows: dict = {}
        for label in wanted:
            if label not in attacks:
                continue
            start = time.perf_counter()
            c = evaluate(attacks[label], model, data, samples=args.samples, batch_size=args.batch)
            seconds = time.perf_counter() - start
            lo, hi = c.interval("tcs")
            rows[label] = {"tcs": round(c.tcs, 4), "interval": [round(lo, 4), round(hi, 4)], "n": c.clean_correct,
                           "seconds_per_image": round(seconds / c.n, 5)}
            print(name, label, rows[label], flush=True)
        if "ref" in rows:
            rows["tcs_star"] = rows["ref"]["tcs"]
            for label in ("gan", "gan-refine-10"):
                if label in rows:
                    rows[label]["gap"] = round(rows["ref"]["tcs"] - rows[label]["tcs"], 4)
                    rows[label]["cheaper"] = round(rows["ref"]["seconds_per_image"]
                                                   / rows[label]["seconds_per_image"], 1)
        out["models"][name] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
