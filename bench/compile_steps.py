"""torch.compile (inductor) on the sync-free steps, on this machine: PGD-10 with ``pgd_step`` compiled
(``dynamic=True``: the batch shrinks as images finish) against the eager step, on the same images, in one run.
Reports the first call (which compiles), the best of the next calls, and how many images' outcomes agree (the
compiled kernels round differently, which can move an image's early stop). One JSON line last.

    python bench/compile_steps.py > bench/results/DATE-cpu/compile-steps.txt
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
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--model", default="resnet")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    x, y = load_dataset("digits-m", "test").batch(slice(0, args.images))
    model = load_model(f"zoo:digits-m/{args.model}", args.device)
    attack = make_attack("pgd-linf-8")

    def run() -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        x_adv = attack(model, x, y).x_adv
        return time.perf_counter() - start, x_adv

    eager = [run() for _ in range(args.repeats)]
    eager_x = eager[-1][1]
    step = lp.pgd_step
    try:
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            lp.pgd_step = torch.compile(step, dynamic=True)
            first, _ = run()
            compiled = [run() for _ in range(args.repeats)]
    finally:
        lp.pgd_step = step
    compiled_x = compiled[-1][1]
    with torch.no_grad():
        wrong_eager = model(eager_x.to(model.device)).argmax(1).cpu() != y
        wrong_compiled = model(compiled_x.to(model.device)).argmax(1).cpu() != y
    out = {"model": args.model, "images": args.images, "threads": torch.get_num_threads(), "device": args.device,
           "eager_s": round(min(t for t, _ in eager), 3), "compile_first_call_s": round(first, 1),
           "compiled_s": round(min(t for t, _ in compiled), 3),
           "compiled_over_eager": round(min(t for t, _ in compiled) / min(t for t, _ in eager), 3),
           "same_images": bool(torch.equal(eager_x, compiled_x)),
           "outcomes_agree": int((wrong_eager == wrong_compiled).sum()), "misclassified_eager": int(wrong_eager.sum()),
           "misclassified_compiled": int(wrong_compiled.sum())}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
