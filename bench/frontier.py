"""The refinement frontier (issue 25 section 1, protocols section 7): TCS against the per-image cost for the shipped
gan-patch generator refined by k steps (gan + k) and LaVAN with k steps, k in ``--steps``.

Cost is measured in the same run: victim passes per image (forward + backward, counted by hooks on the victim:
``robust.attacks.cost``; Grad-CAM placement included, each image stopping at its first success) and seconds per
image (the attack and its scoring, as a board cell times it). The defaults are the demo board's (the first 500
test images of digits-m, 12 % Grad-CAM windows, random targets, seed 0, batch 100), so gan + 0, gan + 10 and
LaVAN-100 (and LaVAN-20 on resnet) give the board's counts and passes exactly. LaVAN-0 is not run: an unoptimised
random patch is the noise control. Per model it also prints the smallest k at which gan + k reaches LaVAN-100's TCS
(and enters its Wilson interval) and the ratio of their passes there.

``--refine-optimizer / --refine-step / --refine-loss`` set gan-patch's refinement (its defaults otherwise): with
``--split val`` that is how the default was chosen (``bench/results/2026-12-03-cpu/refine-choice-val.txt``).
Prints one line per attack and one JSON object on its last line.
Usage: python bench/frontier.py [--models resnet,vit,mixer,resnet-pm,vit-pm,mixer-pm,resnet-8ep]
       [--steps 0,5,10,20,50,100] [--families gan,lavan] [--split test] [--samples 500] [--device cpu]
       [--generator gan-patch-12pct]   (the shipped generator to refine: gan-patch-whole-12pct for the whole-image one)
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore", category=FutureWarning)

MODELS = "resnet,vit,mixer,resnet-pm,vit-pm,mixer-pm,resnet-8ep"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=MODELS, help="digits-m zoo names with a shipped 12 %% generator")
    parser.add_argument("--steps", default="0,5,10,20,50,100")
    parser.add_argument("--families", default="gan,lavan")
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--refine-optimizer", default=None, choices=("sign", "adam"))
    parser.add_argument("--refine-step", type=float, default=None)
    parser.add_argument("--refine-loss", default=None, choices=("ce", "cw"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--generator", default="gan-patch-12pct",
                        help="the shipped generator gan + k starts from: zoo:digits-m/MODEL/GENERATOR")
    args = parser.parse_args()

    import torch

    from robust.attacks import GanPatch, evaluate, make_attack
    from robust.attacks.artifacts import resolve_checkpoint
    from robust.attacks.cost import Passes
    from robust.data import load_dataset
    from robust.models import load_model

    steps = [int(k) for k in args.steps.split(",")]
    families = args.families.split(",")
    refine = {k: v for k, v in (("refine_optimizer", args.refine_optimizer), ("refine_step", args.refine_step),
                                ("refine_loss", args.refine_loss)) if v is not None}
    data = load_dataset("digits-m", args.split)
    out: dict = {"split": args.split, "samples": args.samples, "batch": args.batch, "seed": 0, "area": 0.12,
                 "placement": "gradcam", "generator": args.generator, "device": args.device,
                 "threads": torch.get_num_threads(),
                 "refine": {**{k: p.default for k, p in _refine_defaults().items()}, **refine}, "models": {}}
    for name in args.models.split(","):
        model = load_model(f"zoo:digits-m/{name}", device=args.device)
        checkpoint = resolve_checkpoint(f"zoo:digits-m/{name}/{args.generator}")
        runs = [(f"gan+{k}", "gan", k, GanPatch.load(checkpoint, num_classes=model.num_classes, refine=k, **refine))
                for k in steps if "gan" in families]
        runs += [(f"lavan-{k}", "lavan", k, make_attack("lavan", area=0.12, steps=k))
                 for k in steps if "lavan" in families and k > 0]
        rows = out["models"][name] = {}
        for label, family, k, attack in runs:
            passes = Passes()
            start = time.perf_counter()
            counts = evaluate(attack, model, data, samples=args.samples, batch_size=args.batch, passes=passes)
            seconds = time.perf_counter() - start
            lo, hi = counts.interval("tcs")
            rows[label] = {"family": family, "steps": k, "tcs": counts.tcs, "tcs_interval": [lo, hi],
                           "target_hit": counts.target_hit, "n": counts.tcs_clean_correct, **passes.to_dict(),
                           "s_per_image": seconds / counts.n}
            print(f"{name:10s} {label:10s} TCS {counts.tcs:.3f} [{lo:.3f}, {hi:.3f}] n={counts.tcs_clean_correct}  "
                  f"passes/img {passes.per_image:7.2f}  {seconds / counts.n:.4f} s/img", flush=True)
        if "lavan-100" in rows:
            ref = rows["lavan-100"]
            gans = [r for r in rows.values() if r["family"] == "gan"]
            summary = {"lavan100_tcs": ref["tcs"], "lavan100_passes": ref["per_image"]}
            for key, level in (("reaches", ref["tcs"]), ("within_interval", ref["tcs_interval"][0])):
                hit = next((r for r in gans if r["tcs"] >= level), None)
                summary[f"gan_{key}_at"] = hit and hit["steps"]
                summary[f"passes_ratio_{key}"] = hit and round(ref["per_image"] / hit["per_image"], 2)
            out["models"][name + ":summary"] = summary
            for key, what in (("reaches", "reaches LaVAN-100's TCS"), ("within_interval", "enters its interval")):
                k = summary[f"gan_{key}_at"]
                print(f"{name:10s} gan + k {what} " + (f"at k = {k}, where LaVAN-100 spends "
                                                       f"{summary[f'passes_ratio_{key}']}x its passes" if k is not None
                                                       else f"at no k up to {max(steps)}"), flush=True)
    print(json.dumps(out))


def _refine_defaults() -> dict:
    from robust.registry import get

    return {k: p for k, p in get("gan-patch", "attack").params().items()
            if k in ("refine_optimizer", "refine_step", "refine_loss")}


if __name__ == "__main__":
    main()
