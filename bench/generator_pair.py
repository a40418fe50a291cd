"""Two shipped generators on the same digits-m test images and targets: each one's target hits among the
clean-correct images, the images only one of them wins, and McNemar's exact test on those (the paired comparison
that two Wilson intervals are not). Both run through ``evaluate``, whose per-image target draw is the manifest's,
so each one's hits are its manifest ``target_hit`` when ``--samples`` is the manifest's 1,000.

    python bench/generator_pair.py --model resnet-pm --first gan-patch-12pct --second gan-patch-whole-12pct
"""

from __future__ import annotations

import argparse
import json

import torch
from scipy.stats import binomtest

from robust.attacks import evaluate
from robust.attacks.artifacts import resolve_checkpoint
from robust.attacks.gan import GanPatch
from robust.data import load_dataset
from robust.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resnet-pm", help="a digits-m zoo model")
    ap.add_argument("--first", default="gan-patch-12pct")
    ap.add_argument("--second", default="gan-patch-whole-12pct")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=250)
    args = ap.parse_args()
    model = load_model(f"zoo:digits-m/{args.model}", "cpu")
    test = load_dataset("digits-m", "test")
    hits = {}
    for name in (args.first, args.second):
        gan = GanPatch.load(resolve_checkpoint(f"zoo:digits-m/{args.model}/{name}"))  # seed 0: the same targets
        outcomes: list = []
        evaluate(gan, model, test, samples=args.samples, batch_size=args.batch_size, outcomes=outcomes)
        label, clean, adv, target = (torch.cat(parts) for parts in zip(*outcomes, strict=True))
        hits[name] = (clean == label) & (adv == target)
    a, b = hits[args.first], hits[args.second]
    first_only, second_only = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(second_only, first_only + second_only).pvalue if first_only + second_only else 1.0
    print(json.dumps({"model": args.model, "samples": args.samples, "hits": {args.first: int(a.sum()),
                      args.second: int(b.sum())}, "only": {args.first: first_only, args.second: second_only},
                      "mcnemar_exact_p": p}))


if __name__ == "__main__":
    main()
