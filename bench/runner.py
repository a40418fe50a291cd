"""The runner's cost around the work it wraps, and the pytest plugin's cache, measured in one run.

1. Cell overhead: a small board (zoo models x a few attacks and evaluations) run into a fresh store; the summed
   time from each cell's dispatch to its committed row, over the summed time of the attacks/evaluations inside
   the cells (model loading, example figures, JSON and the SQLite commit are the overhead; planning, which
   hashes every model's weights and the images once per run, is reported separately).
2. A re-run of the same board: every cell skipped (wall time of planning only).
3. ``robust.testing.measure`` (what ``robust_eval`` calls): first call (computes the cell) vs second (cached).

Prints one JSON object on its last line.
Usage: python bench/runner.py [--samples 500] [--models resnet,vit] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--models", default="resnet,vit")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()

    from robust.runner import STORE_NAME, Store, parse_spec, run_board
    from robust.testing import measure

    models = [{"spec": f"zoo:digits-m/{m}", "name": m} for m in args.models.split(",")]
    spec = parse_spec({"dataset": "digits-m", "samples": args.samples, "seeds": [0], "device": args.device,
                       "models": models, "attacks": ["gan-patch-12pct", "noise-patch-12pct", "pgd-linf-8"],
                       "evaluations": ["patch-mixing-attack"]})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        first = run_board(spec, Path(tmp) / "board")
        board_wall = time.perf_counter() - start
        with Store(Path(tmp) / "board" / STORE_NAME) as store:  # a failed cell would only show as a short time
            errors = [f"{r['model']} / {r['task']}: {r['error']}" for r in store.rows() if r["status"] == "failed"]
        for error in errors:
            print("failed cell:", error, file=sys.stderr, flush=True)
        start = time.perf_counter()
        again = run_board(spec, Path(tmp) / "board")
        rerun = time.perf_counter() - start
        t0 = time.perf_counter()
        measure(models[0]["spec"], "natural-patch-12pct", samples=args.samples, device=args.device,
                store=Path(tmp) / "pytest")
        t1 = time.perf_counter()
        cached = measure(models[0]["spec"], "natural-patch-12pct", samples=args.samples, device=args.device,
                         store=Path(tmp) / "pytest")
        t2 = time.perf_counter()
    out = {"samples": args.samples, "models": args.models, "device": args.device, "cells": first.ran,
           "failed": first.failed, "work_s": round(first.work, 2), "cell_wall_s": round(first.cell_wall, 2),
           "run_wall_s": round(board_wall, 2),
           "cell_overhead": round(first.cell_wall / first.work - 1, 4),
           "planning_s": round(board_wall - first.cell_wall, 2),
           "rerun_wall_s": round(rerun, 2), "rerun_skipped": again.skipped,
           "measure_first_s": round(t1 - t0, 2), "measure_cached_s": round(t2 - t1, 2),
           "measure_cached_over_first": round((t2 - t1) / (t1 - t0), 4), "cached": cached.cached}
    print(json.dumps(out))
    if errors:
        sys.exit(f"{len(errors)} cell(s) failed")


if __name__ == "__main__":
    main()
