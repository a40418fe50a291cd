"""bench/generator_stream.py's cooldown branch: the constant run's files are copied as they stand, the branch point
recorded, the constant run untouched, and an ``--until`` that is not the branch's step plus the cooldown refused."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "generator_stream.py"


def branch(out_dir: Path, until: int, cooldown: int) -> tuple[Path, Path]:
    spec = importlib.util.spec_from_file_location("bench_generator_stream", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ap = argparse.ArgumentParser()
    args = argparse.Namespace(out_dir=out_dir, until=until, cooldown=cooldown)
    cooled = module.run_files(out_dir, f"run-cool{cooldown}")
    module.branch(args, ap, "run", module.run_files(out_dir, "run"), cooled)
    return cooled


def test_a_cooldown_branches_the_constant_run_where_it_stands(tmp_path):
    torch.save({"step": 40, "config": "{}"}, tmp_path / "run.resume.pt")
    (tmp_path / "run.curve.json").write_text(json.dumps({"name": "run", "history": [{"step": 40}],
                                                          "test": {"40": {"tcs": 0.5}}}))
    with pytest.raises(SystemExit):  # the branch stands at 40: --until must be 40 + 10
        branch(tmp_path, 60, 10)
    assert not (tmp_path / "run-cool10.resume.pt").exists()
    resume, curve = branch(tmp_path, 50, 10)
    assert resume.name == "run-cool10.resume.pt" and torch.load(resume, weights_only=True)["step"] == 40
    record = json.loads(curve.read_text())
    assert record["branched_from"] == {"run": "run", "step": 40} and "test" not in record  # the base's scores stay
    assert record["history"] == [{"step": 40}]
    torch.save({"step": 45, "config": "{}"}, resume)  # a later call continues the branch, whatever the base does
    assert branch(tmp_path, 50, 10) == (resume, curve) and torch.load(resume, weights_only=True)["step"] == 45


def test_a_cooldown_needs_a_constant_run(tmp_path):
    with pytest.raises(SystemExit):
        branch(tmp_path, 50, 10)
