"""The leaderboard runner: specs and presets, the SQLite store, resuming, executors, trained-artifact caching."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robust.presets import list_presets, load_preset
from robust.runner import Store, load_spec, parse_spec, plan, run_board
from robust.runner.executors import cpu_workers, local_devices, run_local

RESNET = "zoo:digits-m/resnet"
FAST = {"dataset": "digits-m", "samples": 40, "batch_size": 20, "models": [{"spec": RESNET, "name": "resnet"}],
        "attacks": ["noise-patch-8pct", {"preset": "pgd-linf-8", "name": "pgd-1", "params": {"steps": 1}}],
        "evaluations": [{"preset": "patch-drop", "params": {"seeds": 1, "levels": [0.0, 0.5]}}]}
REQUIRED_PRESETS = {"gan-patch-8pct", "universal-patch-8pct", "lavan-8pct", "noise-patch-8pct", "natural-patch-8pct",
                    "pgd-linf-8", "apgd-linf-8", "patch-drop", "patch-mixing-attack", "selectivity"}


@pytest.fixture
def spec_path(tmp_path, write_spec):
    """``spec_path(**changes)``: FAST with ``changes``, written as a spec TOML; its path."""
    return lambda **changes: write_spec(tmp_path / "board.toml", {**FAST, **changes})


def _snapshot(db: Path) -> dict[str, tuple]:
    with Store(db) as store:
        return {r["key"]: (r["status"], r["finished"], json.dumps(r["result"], sort_keys=True)) for r in store.rows()}


def test_shipped_presets_all_load():
    names = set(list_presets())
    assert names >= REQUIRED_PRESETS
    for name in names:
        task = load_preset(name)
        assert task.kind in ("attack", "evaluation") and task.description
    assert load_preset("gan-patch-8pct").params["area"] == 0.08 and load_preset("pgd-linf-8").targeted is False


@pytest.mark.parametrize(("change", "message"), [
    ({"attacks": ["gan-patch-9pct"]}, "preset 'gan-patch-9pct' is unknown .did you mean gan-patch-8pct"),
    ({"sample": 10}, "key 'sample' is unknown .did you mean samples..; expected one of"),
    ({"attacks": [{"preset": "pgd-linf-8", "name": "p", "parms": {}}]}, "key 'parms' is unknown"),
    ({"attacks": [{"name": "x", "attack": "lp", "params": {"epss": 0.1}}]}, "does not take the parameter"),
    ({"attacks": [{"preset": "gan-patch-8pct", "name": "g", "train": {"epoch": 1}}]}, "key 'epoch' is unknown"),
    ({"attacks": ["patch-drop"]}, "is an evaluation; list it under evaluations"),
    ({"seeds": [0, 0]}, "seeds=[0, 0] is not valid"),
    ({"samples": 0}, "samples=0 is not valid"),
    ({"models": [RESNET, RESNET]}, "is listed twice"),
    ({"attacks": [{"preset": "noise-patch-8pct", "name": "n", "models": ["vit"]}]}, "models=['vit'] is not valid"),
    ({"attacks": [{"preset": "noise-patch-8pct", "name": "n", "models": []}]}, "models=[] is not valid"),
])
def test_bad_specs_name_the_problem(spec_path, tmp_path, change, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_spec(spec_path(**change))


def test_a_task_restricted_to_some_models_plans_only_their_cells(spec_path, tmp_path):
    from robust.runner import plan_id

    models = [{"spec": RESNET, "name": "resnet"}, {"spec": "zoo:digits-m/mixer", "name": "mixer"}]
    variant = {"preset": "noise-patch-8pct", "name": "noise-random", "params": {"placement": "random"}}
    spec = load_spec(spec_path(models=models, attacks=["noise-patch-8pct", {**variant, "models": ["mixer"]}],
                           evaluations=[]))
    cells, failed = plan(spec)
    assert not failed and sorted((c.model, c.task.name) for c in cells) == [
        ("mixer", "noise-patch-8pct"), ("mixer", "noise-random"), ("resnet", "noise-patch-8pct")]
    everywhere = load_spec(spec_path(models=models, attacks=["noise-patch-8pct", variant], evaluations=[]))
    assert plan_id(everywhere) != plan_id(spec) and everywhere.only == {}


def test_more_samples_than_the_split_is_an_error_unless_left_to_the_default(spec_path, tmp_path):
    with pytest.raises(ValueError, match="spec: samples=5000 is not valid: it is more than the 1000 test images"):
        run_board(load_spec(spec_path(samples=5000)), tmp_path / "out")
    table = {k: v for k, v in FAST.items() if k != "samples"}
    spec = parse_spec({**table, "dataset": "imagenet-photos", "models": ["zoo:imagenet/efficientnet-lite0"],
                       "attacks": ["noise-patch-8pct"], "evaluations": []})
    cells, failed = plan(spec)
    assert not failed and cells[0].samples == 3  # the default: 500, or all of a smaller split


def test_preset_file_with_unknown_key(spec_path, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "odd.toml").write_text('attack = "noise-patch"\ntargetted = true\n')
    with pytest.raises(ValueError, match=r"key 'targetted' is unknown \(did you mean targeted.*\); expected one of"):
        load_spec(spec_path(presets=["mine"], attacks=["odd"]))


def test_run_stores_every_cell_and_a_rerun_skips_them(spec_path, tmp_path):
    spec = load_spec(spec_path(seeds=[0, 1]))
    report = run_board(spec, tmp_path / "out")
    assert (report.cells, report.ran, report.skipped, report.failed) == (6, 6, 0, 0)
    before = _snapshot(tmp_path / "out" / "results.sqlite")
    assert len(before) == 6 and all(v[0] == "done" for v in before.values())
    again = run_board(spec, tmp_path / "out")
    assert (again.ran, again.skipped) == (0, 6)
    assert _snapshot(tmp_path / "out" / "results.sqlite") == before
    rows = {(r["task"], r["seed"]): r for r in Store(tmp_path / "out" / "results.sqlite").rows()}
    noise = rows["noise-patch-8pct", 0]
    assert noise["result"]["n"] == 40 and noise["result"]["targeted"] and noise["figure"][:4] == b"\x89PNG"
    assert noise["versions"]["torch"] and noise["device"] == "cpu" and noise["seconds"] > 0
    assert rows["patch-drop", 1]["result"]["x"] == [0.0, 0.5]
    # a changed sample count is another configuration: new cells, the old ones kept
    more = run_board(load_spec(spec_path(samples=20)), tmp_path / "out")
    assert more.ran == 3 and len(_snapshot(tmp_path / "out" / "results.sqlite")) == 9


def test_a_model_that_fails_to_load_is_recorded_and_the_grid_goes_on(spec_path, tmp_path):
    spec = load_spec(spec_path(models=[{"spec": "zoo:digits-m/nonexistent", "name": "ghost"},
                                             {"spec": RESNET, "name": "resnet"}]))
    report = run_board(spec, tmp_path / "out")
    assert (report.cells, report.ran, report.failed) == (6, 3, 3)
    rows = Store(tmp_path / "out" / "results.sqlite").rows()
    ghost = [r for r in rows if r["model"] == "ghost"]
    assert len(ghost) == 3 and all(r["status"] == "failed" and "did not load" in r["error"] and "nonexistent"
                                   in r["error"] for r in ghost)
    assert all(r["status"] == "done" for r in rows if r["model"] == "resnet")
    assert run_board(spec, tmp_path / "out").skipped == 3  # failed cells are retried, done ones are not


def test_a_failing_cell_does_not_stop_the_others(spec_path, tmp_path):
    # a 5-class model fails before any work (it cannot predict digits-m's 10 classes); a task that fails inside its
    # cell (torchattacks refuses the option) is recorded with its error; the rest runs
    bad = {"name": "pgd-bad", "attack": "lp", "params": {"method": "apgd", "steps": 1, "options": {"bogus": 1}}}
    spec = load_spec(spec_path(models=[{"spec": "torchvision.models:resnet18?num_classes=5", "name": "five"},
                                             {"spec": RESNET, "name": "resnet"}], evaluations=[],
                           attacks=["noise-patch-8pct", bad]))
    report = run_board(spec, tmp_path / "out")
    rows = Store(tmp_path / "out" / "results.sqlite").rows()
    assert (report.ran, report.failed) == (2, 3)
    assert all(r["status"] == "failed" and "has 5 classes and dataset 'digits-m' has 10" in r["error"] for r in rows
               if r["model"] == "five")
    status = {r["task"]: (r["status"], r["error"]) for r in rows if r["model"] == "resnet"}
    assert status["noise-patch-8pct"] == ("done", None)
    assert status["pgd-bad"][0] == "failed" and "bogus" in status["pgd-bad"][1]


def test_unwritable_output_directory(spec_path, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"output directory .* cannot be written"):
        run_board(load_spec(spec_path()), blocker / "board")




def test_trained_attacks_use_shipped_artifacts_or_train_and_cache(spec_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUST_CACHE", str(tmp_path / "cache"))
    uni = {"preset": "universal-patch-8pct", "name": "uni", "train": {"steps": 2, "train_samples": 64}}
    spec = load_spec(spec_path(attacks=["gan-patch-12pct", uni], evaluations=[]))
    cells, _ = plan(spec)
    arts = {c.task.name: c.artifact for c in cells}
    assert arts["gan-patch-12pct"]["source"] == "shipped" and arts["uni"]["source"] == "cache"
    assert [c.task.name for c in cells if c.trains_first] == ["uni"]
    lines: list[str] = []
    run_board(spec, tmp_path / "out", progress=lambda line, done, total: lines.append(line))
    assert lines[0].endswith("training first (no shipped or cached artifact; tens of minutes on a CPU; the spec's "
                             "train_missing = false fails such cells instead): resnet / uni")
    assert "resnet / uni" in lines[1]  # the cell that trains is dispatched first, so the others overlap it
    rows = {r["task"]: r for r in Store(tmp_path / "out" / "results.sqlite").rows()}
    assert rows["uni"]["status"] == "done", rows["uni"]["error"]
    assert rows["gan-patch-12pct"]["result"]["artifact"]["source"] == "shipped"
    cached = Path(arts["uni"]["path"])
    assert cached.exists() and rows["uni"]["result"]["train_seconds"] > 0
    stamp = cached.stat().st_mtime_ns
    # the same configuration under another name, on a fresh board: the cached patches are reused, not retrained
    spec2 = load_spec(spec_path(attacks=[{**uni, "name": "uni-again"}], evaluations=[]))
    lines.clear()
    run_board(spec2, tmp_path / "out2", progress=lambda line, done, total: lines.append(line))
    assert lines[0] == "0 of 1 cells already done"  # nothing left to train
    row = Store(tmp_path / "out2" / "results.sqlite").rows()[0]
    assert row["status"] == "done" and cached.stat().st_mtime_ns == stamp
    assert row["result"]["tcs"] == rows["uni"]["result"]["tcs"]


@pytest.mark.parametrize("preset", ["gan-patch-12pct", "gan-patch-stream-12pct", "gan-patch-whole-12pct"])
def test_each_generator_preset_finds_the_shipped_generator_trained_as_it_says(preset):
    from robust.attacks.artifacts import artifact_for
    from robust.presets import load_preset

    def unasked() -> str:
        raise AssertionError("a shipped artifact needs no hash of the training images")

    found = artifact_for(load_preset(preset), "zoo:digits-m/resnet", "w", "digits-m", 0, unasked)
    assert found["name"] == f"zoo:digits-m/resnet/{preset}"  # not another recipe's (context, steps, stream differ)


def _untimed(result: dict) -> dict:
    """A cell's result less what the clock measured (its seconds, its training's, one prediction's)."""
    out = {k: v for k, v in result.items() if k not in ("seconds", "train_seconds")}
    if out.get("inference"):
        out["inference"] = {k: v for k, v in out["inference"].items() if k != "seconds"}
    return out


def _rows_without_timing(db: Path) -> dict:
    keep = ("model", "task", "kind", "seed", "status")
    with Store(db) as store:
        out = {}
        for r in store.rows():
            result = _untimed(r["result"] or {})
            out[r["key"]] = ({k: r[k] for k in keep}, result)
        return out


def test_cpu_workers_come_from_the_argument_then_the_environment_then_the_cores(spec_path, monkeypatch, tmp_path):
    import os

    monkeypatch.delenv("ROBUST_WORKERS", raising=False)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpu_workers() == min(cores, 4) and cpu_workers(3) == 3
    assert local_devices("cpu", 2) == ["cpu", "cpu"] and local_devices("cpu", 1) == ["cpu"]
    monkeypatch.setenv("ROBUST_WORKERS", " 2 ")
    assert cpu_workers() == 2 and cpu_workers(1) == 1
    monkeypatch.setenv("ROBUST_WORKERS", "many")
    with pytest.raises(ValueError, match="ROBUST_WORKERS='many' is not valid; expected a positive number"):
        cpu_workers()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"workers=.* is not valid"):
            cpu_workers(bad)
    with pytest.raises(ValueError, match="workers=0 is not valid"):
        run_board(load_spec(spec_path()), tmp_path / "out", workers=0)
    assert not (tmp_path / "out").exists()  # refused before a store is made


@pytest.mark.subprocess
@pytest.mark.slow  # spawns a worker process per device: 25 s on 2 cores
def test_worker_processes_give_the_same_rows(tmp_path):
    spec = parse_spec({**FAST, "seeds": [0, 1]})
    cells, _ = plan(spec)
    serial, parallel = [], []
    run_local(cells, ["cpu"], serial.append)
    run_local(cells, ["cpu", "cpu"], parallel.append)  # the multi-GPU path: one spawned worker per device
    strip = lambda rows: {r["key"]: (r["status"], _untimed(r["result"])) for r in rows}
    assert strip(parallel) == strip(serial) and len(serial) == 6


@pytest.mark.subprocess
@pytest.mark.slow  # starts a Ray cluster: 26 s on 2 cores
def test_ray_executor_matches_local(spec_path, tmp_path):
    pytest.importorskip("ray")
    spec = load_spec(spec_path())
    run_board(spec, tmp_path / "local")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        run_board(spec, tmp_path / "ray", executor="ray")
    finally:
        ray.shutdown()
    assert _rows_without_timing(tmp_path / "ray" / "results.sqlite") == \
        _rows_without_timing(tmp_path / "local" / "results.sqlite")


def test_unreachable_ray_address_is_one_clear_line(spec_path, tmp_path):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"Ray at 'ray://127.0.0.1:1' is unreachable"):
        run_board(load_spec(spec_path()), tmp_path / "out", executor="ray://127.0.0.1:1")
    assert time.perf_counter() - start < 30


def _count(db: Path, sql: str = "SELECT COUNT(*) FROM cells") -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        conn.close()


def _wait_for_rows(db: Path, at_least: int, proc: subprocess.Popen, log: Path, timeout: float = 600.0) -> int:
    """Wait until the store holds ``at_least`` rows (the run's observable progress, however loaded the machine)
    and return the count; fail if the run ends first (with its stderr, ``log``) or nothing comes in ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while (n := _count(db)) < at_least:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before the store had {at_least} rows:\n"
                        f"{log.read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"no progress in {timeout:.0f} s: {n} rows, waiting for {at_least}"
        time.sleep(0.02)
    return n


@pytest.mark.parametrize(("kills", "seeds"), [
    pytest.param(1, 4, id="1-kill"),
    pytest.param(3, 8, id="3-kills", marks=pytest.mark.slow),
    pytest.param(10, 24, id="10-kills", marks=pytest.mark.slow),
])
@pytest.mark.subprocess
def test_sigkill_at_random_moments_loses_nothing(spec_path, tmp_path, kills, seeds):
    """Kill a real run with SIGKILL at random moments while it is computing cells, resuming each time, then
    finish: every finished cell is kept as it was, nothing is duplicated, the store passes SQLite's integrity
    check, each resumed run computes only the cells missing from the store, and the result is that of an
    uninterrupted run. Each kill waits on the store (a committed cell: the run is computing, the next cell in
    flight), then a random fraction of the shortest recorded cell wall time, so the moments scale with the machine's
    load and each kill costs about one cell of the grid."""
    total = 3 * seeds  # cells: 3 tasks x seeds
    spec = spec_path(seeds=list(range(seeds)), samples=30)
    out, db = tmp_path / "out", tmp_path / "out" / "results.sqlite"
    cmd = [sys.executable, "-m", "robust", "leaderboard", "run", str(spec), "--out", str(out), "--no-render",
           "--json"]
    rng, previous, done_at_kill = random.Random(0), {}, []
    for kill in range(kills):
        before = _count(db)
        assert before < total - 2, f"the grid is nearly finished before kill {kill + 1} of {kills}"
        log = tmp_path / f"run-{kill}.stderr"
        with log.open("w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            _wait_for_rows(db, before + 1, proc, log)  # this run has committed a cell: it is computing the next
            wall = _count(db, "SELECT MIN(wall) FROM cells")  # how long a cell takes (the first of a run is slower)
            time.sleep(rng.uniform(0.0, 1.0) * wall)  # a random moment inside the next cell
            assert proc.poll() is None, "the run ended before it could be killed"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        now = _snapshot(db)
        assert all(now.get(k) == v for k, v in previous.items()), "a finished cell was lost or rewritten"
        previous = now
        done_at_kill.append(len(previous))
    report = run_board(load_spec(spec), out)  # the last resume runs here: no process start to wait for
    assert (report.skipped, report.ran, report.failed) == (len(previous), total - len(previous), 0)
    final = _snapshot(db)
    assert len(final) == total and all(v[0] == "done" for v in final.values())
    assert all(final[k] == v for k, v in previous.items())
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM cells").fetchone() == (total, total)
    conn.close()
    run_board(load_spec(spec), tmp_path / "uninterrupted")
    assert _rows_without_timing(db) == _rows_without_timing(tmp_path / "uninterrupted" / "results.sqlite")
    print(f"kills={kills} cells done after each kill={done_at_kill} final run ran={report.ran}")


def test_train_missing_false_records_instead_of_training(spec_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUST_CACHE", str(tmp_path / "cache"))
    spec = load_spec(spec_path(attacks=["gan-patch-12pct", "gan-patch-8pct"], evaluations=[],
                           train_missing=False))
    report = run_board(spec, tmp_path / "out")
    rows = {r["task"]: r for r in Store(tmp_path / "out" / "results.sqlite").rows()}
    assert (report.ran, report.failed) == (1, 1) and rows["gan-patch-12pct"]["status"] == "done"
    assert rows["gan-patch-8pct"]["status"] == "failed" and "train_missing = false" in rows["gan-patch-8pct"]["error"]
    assert not list((tmp_path / "cache").glob("artifacts/*.safetensors"))




def test_cells_that_draw_donors_from_the_split_are_keyed_by_the_whole_split(monkeypatch):
    """natural-patch and the patch-mixing curves draw donors from the whole test split: their keys hash it, so a
    change to any image of the split recomputes them, while other cells hash only the images they evaluate."""
    from robust.runner import keys

    calls = []
    real = keys.fingerprint_data

    def recording(data, samples=None, *args, **kwargs):
        calls.append(samples)
        return real(data, samples, *args, **kwargs)

    monkeypatch.setattr(keys, "fingerprint_data", recording)
    base = {"dataset": "digits-m", "samples": 20, "models": [RESNET]}
    noise, _ = plan(parse_spec({**base, "attacks": ["noise-patch-8pct"]}))
    assert calls == [20]
    calls.clear()
    natural, _ = plan(parse_spec({**base, "attacks": ["noise-patch-8pct", "natural-patch-8pct"],
                                  "evaluations": ["patch-drop", "selectivity"]}))
    assert calls == [20, None]  # the evaluated images, then the whole split (once, for every donor task)
    keys = {c.task.name: c.key for c in natural}
    assert keys["noise-patch-8pct"] == noise[0].key  # the others' keys do not change


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.subprocess
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_worker_exits_when_its_driver_is_killed():
    """A driver killed by a signal never shuts its pool down: its workers watch it and exit rather than run on."""
    code = ("import multiprocessing as mp, os, time\n"
            "from robust.runner.executors import _exit_with\n"
            "def work(parent):\n    _exit_with(parent)\n    time.sleep(60)\n"
            "p = mp.get_context('fork').Process(target=work, args=(os.getpid(),))\n"
            "p.start()\nprint(p.pid, flush=True)\ntime.sleep(60)\n")
    driver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    worker = int(driver.stdout.readline())
    assert _running(worker)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 15
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(worker)
