"""What the realism detector costs a board's patch cell: demo cells run whole (``robust.runner.cells.execute``, as a
board's worker runs them, on one thread as the two workers of a 2-core board do) with the spec's ``detector`` on and
off, in the same run, after one warm-up cell that loads the models and data. Their counts and per-image measures
must agree; only the realism summary's detector AUC differs. The cell's own ``seconds`` (the attack) is printed
beside the whole cell's wall time, so the ratio reads as "the detector costs N attacks".

Prints one JSON object on its last line.
Usage: python bench/realism_cost.py [--cells resnet/noise-patch-12pct,...] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore", category=FutureWarning)
DEMO = Path(__file__).parent.parent / "leaderboards" / "demo.toml"
CELLS = "resnet/noise-patch-12pct,resnet/gan-patch-12pct,vit/gan-patch-refine10-12pct,mixer/universal-patch-12pct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", default=CELLS, help="model/task pairs of the demo board")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from robust.runner import plan
    from robust.runner.cells import execute
    from robust.runner.spec import load_spec

    cells, _ = plan(load_spec(DEMO))
    by_name = {f"{c.model}/{c.task.name}": c for c in cells}
    wanted = args.cells.split(",")
    if missing := [w for w in wanted if w not in by_name]:
        parser.error(f"--cells: {missing} are not cells of {DEMO.name}; expected model/task pairs such as "
                     f"{next(iter(by_name))}")
    for w in wanted:  # warm-up: every model and the data loaded, once
        execute(dataclasses.replace(by_name[w], detector=False, samples=4), examples=0)
    out = {}
    for w in wanted:
        rows = {}
        for detector in (True, False):
            start = time.perf_counter()
            row = execute(dataclasses.replace(by_name[w], detector=detector))
            rows[detector] = row, time.perf_counter() - start
        (on, wall_on), (off, wall_off) = rows[True], rows[False]
        assert on["status"] == off["status"] == "done", (on.get("error"), off.get("error"))
        same = all(on["result"][k] == off["result"][k] for k in ("n", "success", "target_hit", "per_image")) and all(
            on["result"]["realism"][m] == off["result"]["realism"][m] for m in ("ssim", "psnr", "tv", "hist"))
        out[w] = {"attack_s": round(on["seconds"], 2), "cell_s_detector": round(wall_on, 2),
                  "cell_s_no_detector": round(wall_off, 2), "detector_s": round(wall_on - wall_off, 2),
                  "detector_per_attack": round((wall_on - wall_off) / on["seconds"], 2),
                  "auc": on["result"]["realism"]["detector_auc"]["auc"], "same_counts_and_measures": same}
        print(w, out[w], flush=True)
    print(json.dumps({"threads": args.threads, "samples": cells[0].samples, "cells": out}))


if __name__ == "__main__":
    main()
