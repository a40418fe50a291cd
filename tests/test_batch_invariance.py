"""A seed fixes the result: every attack and evaluation of the demo board gives the same counts (and curves) at
any batch size, because each image's random draws depend on (seed, its index), not on its batch. Counts must be
equal; curves of continuous values (saliency shares) equal up to float rounding of the batched kernels."""

import dataclasses
from pathlib import Path

import pytest
import tomllib

from robust.runner import plan
from robust.runner.cells import execute
from robust.runner.spec import parse_spec

DEMO = Path(__file__).parent.parent / "leaderboards" / "demo.toml"
#: what must not move with the batch size
COUNTS = ("n", "clean_correct", "adv_correct", "success", "target_hit", "success_all", "target_hit_all", "skipped")


def _cells(samples: int, cheap: bool) -> list:
    table = tomllib.loads(DEMO.read_text())
    table.update(samples=samples, models=[{"spec": "zoo:digits-m/resnet", "name": "resnet"}])
    # every task on resnet: one run on some models only, resnet among them, keeps it (the rest are left out)
    table["attacks"] = [{**a, "models": ["resnet"]} if isinstance(a, dict) and "models" in a else a
                        for a in table["attacks"] if not isinstance(a, dict) or "resnet" in a.get("models", ["resnet"])]
    if cheap:  # the board's tasks with smaller budgets: the same code paths, a fraction of the time
        small = {"lavan-12pct": {"steps": 4}, "pgd20-linf-8": {"steps": 5, "restarts": 2},
                 "lavan20-12pct": {"steps": 3}, "gan-patch-refine10-12pct": {"refine": 2}}
        table["attacks"] = [{"preset": a, "params": small.get(a, {})} if isinstance(a, str) else
                            {**a, "params": {**a.get("params", {}), **small.get(a["name"], {})}}
                            for a in table["attacks"]]
        table["evaluations"] = [{"preset": e, "params": {"seeds": 2}} for e in table["evaluations"]]
    cells, failed = plan(parse_spec(table, DEMO))
    assert not failed, failed
    return cells


def _outcome(cell, batch_size: int) -> dict:
    row = execute(dataclasses.replace(cell, batch_size=batch_size), examples=0)
    assert row["status"] == "done", row.get("error")
    result = row["result"]
    if row["kind"] == "evaluation":
        return {"x": result["x"], "n": result["n"], "curve": [*result["mean"], *result["area_interval"]]}
    return {k: result[k] for k in COUNTS}


def _check(samples: int, batch_sizes: tuple[int, ...], cheap: bool) -> None:
    for cell in _cells(samples, cheap):
        first, *others = [_outcome(cell, b) for b in batch_sizes]
        for b, other in zip(batch_sizes[1:], others, strict=True):
            where = f"{cell.task.name}: batch {b} gives {other}, batch {batch_sizes[0]} {first}"
            if "curve" in first:
                assert other["curve"] == pytest.approx(first["curve"], abs=1e-6), where
            assert {**other, "curve": None} == {**first, "curve": None}, where


def test_every_demo_task_counts_the_same_at_any_batch_size():
    _check(16, (3, 1000), cheap=True)  # 3 leaves a short last batch; batch 1 and 7 are in the slow test


@pytest.mark.slow
def test_every_demo_task_counts_the_same_at_batch_sizes_1_and_7():
    _check(24, (1, 7, 1000), cheap=True)


@pytest.mark.slow
def test_every_demo_task_at_the_board_budget_and_batch_sizes_1_7_100_1000():
    _check(120, (1, 7, 100, 1000), cheap=False)
