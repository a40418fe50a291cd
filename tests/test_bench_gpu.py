"""bench/gpu.py, the 224-px kernel bench: its --quick run on the CPU (every kernel timed, one JSON line last), its
bookkeeping of host syncs and failures, and on a CUDA device (marked gpu) a run in which robust's own kernels
never sync the host inside their timed calls."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"
MODEL_KERNELS = ("cam", "pytorch_grad_cam", "gan_patch", "gan_patch_refine", "lavan", "occlusion", "bare_forwards",
                 "pgd", "torchattacks_pgd")
AUGMENT_KERNELS = ("patch_mixing", "kornia_cutmix", "clone")
PEERS = {"cam": {"pytorch_grad_cam"}, "gan_patch": {"lavan"}, "gan_patch_refine": {"lavan"},
         "occlusion": {"bare_forwards"}, "pgd": {"torchattacks_pgd"}, "patch_mixing": {"kornia_cutmix", "clone"},
         "kornia_cutmix": {"clone"}}


def run_bench(tmp_path: Path, *args: str, timeout: int) -> dict:
    """Run bench/gpu.py with ``args`` (and --out) in a subprocess; its last stdout line, parsed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "ROBUST_CACHE": str(tmp_path / "cache"),
           "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "result.json"
    res = subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(out)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert json.loads(out.read_text()) == result  # --out holds the same object
    assert len(lines) > 1 and not lines[0].startswith("{")  # progress lines first
    return result


def all_rows(result: dict) -> dict[str, dict]:
    rows = {f"augment/{k}": v for k, v in result["augment"].items()}
    for model, entry in result["models"].items():
        rows.update({f"{model}/{k}": v for k, v in entry["kernels"].items()})
    return rows


def check_complete(result: dict, models: list[str]) -> None:
    """Every kernel of every model timed, no failure, ratios against the peers."""
    assert list(result["models"]) == models
    assert tuple(result["augment"]) == AUGMENT_KERNELS
    for model in models:
        assert tuple(result["models"][model]["kernels"]) == MODEL_KERNELS, result["models"][model]
    for name, row in all_rows(result).items():
        assert "error" not in row, (name, row)
        assert row["ms"] > 0 and row["images_per_s"] > 0, (name, row)
        kernel = name.split("/")[1]
        if kernel in PEERS:
            assert set(row["ratio"]) == PEERS[kernel] and all(v > 0 for v in row["ratio"].values()), (name, row)


@pytest.mark.subprocess
@pytest.mark.slow  # the bench script end to end on the CPU: 16 s on 2 cores
def test_quick_cpu_run_times_every_kernel(tmp_path):
    models = ["mobilenetv3_small_050", "test_vit?img_size=224"]  # a CNN and a ViT (token reshape), both tiny
    result = run_bench(tmp_path, "--quick", "--device", "cpu", "--models", ",".join(models), timeout=300)
    check_complete(result, models)
    assert result["device"] == "cpu" and result["batch"] == 2 and result["size"] == 224
    assert result["torch"] == torch.__version__ and result["sync_check"] is False
    assert set(result["versions"]) == {"robust-suite", "timm", "grad-cam", "kornia", "torchattacks"}
    assert result["models"]["mobilenetv3_small_050"]["kernels"]["pytorch_grad_cam"]["library"] == "grad-cam"
    assert all(row["peak_mib"] is None for row in all_rows(result).values())  # the CPU has no such counter
    assert result["models"]["test_vit?img_size=224"]["family"] == "vit"
    occlusion = result["models"]["mobilenetv3_small_050"]["kernels"]["occlusion"]
    assert occlusion["grid"] == 14 and occlusion["forwards"] == 10  # 10 levels, 1 seed at --quick


def load_bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # its `from _timing import ...`
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gpu", module)  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda's sync-mode, synchronize and memory calls, faked on a machine without CUDA: the log of calls and
    the current sync mode (0 default, 1 warn, 2 error)."""
    state = {"mode": 0, "log": []}

    def set_mode(mode):
        state["mode"] = {"default": 0, "warn": 1, "error": 2}.get(mode, mode)

    monkeypatch.setattr(torch.cuda, "get_sync_debug_mode", lambda: state["mode"])
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", set_mode)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: state["log"].append(("sync", state["mode"])))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: state["log"].append(("reset",)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**20)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    return state


def test_timed_calls_run_under_the_error_sync_mode_and_nothing_else(monkeypatch, fake_cuda):
    gpu = load_bench(monkeypatch)

    @contextlib.contextmanager
    def setup():
        yield lambda: fake_cuda["log"].append(("call", fake_cuda["mode"]))

    row = gpu.measure(gpu.Kernel("fake", setup, images=4, repeats=3), torch.device("cuda"))
    assert [e[1] for e in fake_cuda["log"] if e[0] == "call"] == [0, 2, 2, 2]  # the warm-up unchecked
    assert all(e[1] == 0 for e in fake_cuda["log"] if e[0] == "sync")  # the clock's syncs outside the check
    assert fake_cuda["log"][:3] == [("sync", 0), ("reset",), ("call", 0)]  # peak memory counted from the warm-up
    assert fake_cuda["mode"] == 0 and row["peak_mib"] == 3.0 and "sync_error" not in row and row["ms"] > 0


def test_a_host_sync_is_recorded_with_its_sites_and_the_kernel_still_timed(monkeypatch, fake_cuda):
    gpu = load_bench(monkeypatch)
    modes = []

    def kernel():  # syncs once per call, as torch reports it in each mode
        modes.append(fake_cuda["mode"])
        if fake_cuda["mode"] == 2:
            raise RuntimeError("called a synchronizing CUDA operation")
        if fake_cuda["mode"] == 1:
            for _ in range(2):
                warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
        return torch.ones(3).sum()

    @contextlib.contextmanager
    def setup():
        yield kernel

    row = gpu.measure(gpu.Kernel("fake", setup, images=4, repeats=2), torch.device("cuda"))
    # warm-up, the checked call that raised, the scan (under "warn": the new warm-up), 2 unchecked timed calls
    assert modes == [0, 2, 1, 0, 0] and fake_cuda["mode"] == 0
    assert row["sync_error"].startswith("RuntimeError: called a synchronizing CUDA operation at tests/")
    assert "test_bench_gpu.py" in row["sync_error"] and row["sync_error"].endswith("(kernel)")
    (where, count), = row["sync_sites"].items()  # the warning's line, twice
    assert where.startswith("tests/test_bench_gpu.py:") and where.endswith(" (kernel)") and count == 2
    assert row["ms"] > 0 and row["images_per_s"] > 0 and row["peak_mib"] == 3.0 and "error" not in row


def test_a_failed_kernel_is_recorded_and_its_ratio_is_null(monkeypatch):
    gpu = load_bench(monkeypatch)

    @contextlib.contextmanager
    def broken():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        yield  # a generator-based context manager

    @contextlib.contextmanager
    def fine():
        yield lambda: None

    rows = {"cam": gpu.measure(gpu.Kernel("cam", fine, 2, 1), torch.device("cpu")),
            "pytorch_grad_cam": gpu.measure(gpu.Kernel("pytorch_grad_cam", broken, 2, 1), torch.device("cpu"))}
    gpu.add_ratios(rows)
    assert rows["pytorch_grad_cam"]["error"] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert rows["pytorch_grad_cam"]["ms"] is None and rows["cam"]["ratio"] == {"pytorch_grad_cam": None}
    assert "FAILED" in gpu.describe("pytorch_grad_cam", rows["pytorch_grad_cam"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch", "0"], "--batch 0 is not valid; expected a positive integer."),
    (["--kernels", "cam,nope"], "--kernels 'cam,nope' is not valid; expected a comma-separated subset of"),
])
def test_bad_arguments_are_refused_naming_the_value(monkeypatch, capsys, argv, message):
    gpu = load_bench(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        gpu.parse_args([*argv, "--device", "cpu"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.subprocess
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_has_no_host_sync_in_robusts_kernels(tmp_path):
    """A short CUDA run: every kernel timed with its peak memory, and none of robust's own kernels (the bench's
    baselines included) syncs the host inside a timed call; the third-party peers' syncs are their libraries'."""
    models = ["resnet18", "vit_tiny_patch16_224"]
    result = run_bench(tmp_path, "--quick", "--device", "cuda", "--batch", "16", "--repeats", "2",
                       "--models", ",".join(models), timeout=600)
    check_complete(result, models)
    assert result["sync_check"] is True and result["device"] != "cpu"
    rows = all_rows(result)
    assert all(row["peak_mib"] > 0 for row in rows.values())
    assert {name.split("/")[1] for name, row in rows.items() if "library" in row} == {
        "pytorch_grad_cam", "kornia_cutmix", "torchattacks_pgd"}
    synced = {name: (row["sync_error"], row["sync_sites"]) for name, row in rows.items()
              if "sync_error" in row and "library" not in row}
    assert not synced, json.dumps(synced, indent=1)


@pytest.mark.subprocess
@pytest.mark.slow  # 35-75 s: in make suites, with the other whole-script runs
@pytest.mark.parametrize("train", ["digits", "photos"])
def test_the_prepared_gpu_run_dry_runs_every_step_on_the_cpu_and_leaves_the_repository_as_it_was(train, tmp_path):
    """`make gpu DRY_RUN=1`: setup, bench/gpu.sh, bench/gpu.py and two training steps resumed from a copy of the
    committed resume file (the 224-px photos run: from scratch when none is committed), every result in OUT; the
    committed curve and resume file untouched."""
    import hashlib

    run = {"digits": "resnet-w32-d3-ce-lr0.001-b128-train-s0",
           "photos": "imagenet-crops-efficientnet-lite0-n8-w32-d3-ce-lr0.001-b32-train-s0-bf16"}[train]
    committed = ROOT / "bench" / "results" / "generator-stream"
    digest = lambda path: hashlib.sha256(path.read_bytes()).hexdigest()
    before = {p.name: digest(p) for p in committed.glob(f"{run}.*")}
    curve = committed / f"{run}.curve.json"
    steps = json.loads(curve.read_text())["history"][-1]["step"] if curve.exists() else 0
    out = tmp_path / "out"
    res = subprocess.run(["make", "--no-print-directory", "gpu", "DRY_RUN=1"], cwd=ROOT,
                         env={**os.environ, "OUT": str(out), "TRAIN": train}, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    log = (out / "setup.txt").read_text()
    for step in ("bench/gpu.sh exit 0", "bench/gpu.py exit 0", f"training {train} exit 0 (from step {steps})"):
        assert step in log, log
    (row,) = [json.loads(line) for line in (out / "bench32" / "results.jsonl").read_text().splitlines()]
    assert row["script"] == "cam" and row["rc"] == 0 and row["result"]
    kernels = json.loads((out / "gpu224.json").read_text())["models"]
    assert kernels and all("cam" in model["kernels"] for model in kernels.values())
    assert json.loads((out / f"{run}.curve.json").read_text())["history"][-1]["step"] == steps + 2
    parts = b"".join(p.read_bytes() for p in sorted(out.glob("resume.part-*")))
    assert hashlib.sha256(parts).hexdigest() in log  # the parts join into the resume file the log names
    assert {p.name: digest(p) for p in committed.glob(f"{run}.*")} == before


@pytest.mark.subprocess
@pytest.mark.parametrize("train", ["photos", "digits", "mixer", "whole", "mixer-whole", "vit-whole", "view",
                                   "pm-whole", "vit-pm-whole", "mixer-pm-whole", "8ep-whole"])
def test_a_sitting_s_copy_of_this_tree_fits_the_64_mib_a_lent_gpu_takes(train):
    """`bench/gpu_carry.sh --dry-run`: what a `make gpu` sitting carries, once the files it never reads are set aside,
    stays under the limit (a file added to the tree can push it over; the Lite0 wheel adds 17 MiB for photos)."""
    res = subprocess.run(["bash", "bench/gpu_carry.sh", "--dry-run", train], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    carried = int(res.stdout.split("= ")[1].split(" MiB")[0])
    assert carried <= (64 - 17 if train == "photos" else 64), res.stdout


@pytest.mark.subprocess
def test_gpu_carry_moves_aside_and_puts_back_every_file(tmp_path):
    """Set aside, then restore: the same files with the same bytes, ignored ones (a board's store) included."""
    repo = tmp_path / "repo"
    files = {"bench/gpu_carry.sh": (ROOT / "bench" / "gpu_carry.sh").read_text(), "keep.py": "x = 1\n",
             "bench/gpu_train.sh": (ROOT / "bench" / "gpu_train.sh").read_text(),
             "leaderboards/demo/README.md": "board\n", "leaderboards/demo.toml": "title = 'demo'\n",
             "robust/attacks/weights/digits-m-resnet-pm-gan-patch-12pct.safetensors": "w",
             "robust/attacks/weights/digits-m-resnet-gan-patch-12pct.safetensors": "kept",
             "bench/results/generator-stream/resnet-w32-d3-ce-lr0.001-b128-train-s0.resume.pt": "r",
             "bench/results/generator-stream/mixer-w32-d3-ce-lr0.001-b128-train-s0.resume.pt": "kept"}
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    (repo / ".gitignore").write_text("*.sqlite\n")
    (repo / "leaderboards" / "demo" / "results.sqlite").write_text("store")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    before = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    env = {**os.environ, "ASIDE": str(tmp_path / "aside")}
    res = subprocess.run(["bash", "bench/gpu_carry.sh", "mixer"], cwd=repo, env=env, capture_output=True, text=True)
    assert res.returncode == 0 and "moved aside: 3 paths" in res.stdout, res.stdout + res.stderr
    assert (repo / "bench/results/generator-stream/mixer-w32-d3-ce-lr0.001-b128-train-s0.resume.pt").exists()
    assert not (repo / "leaderboards" / "demo").exists() and (repo / "leaderboards" / "demo.toml").exists()
    assert (repo / "robust/attacks/weights/digits-m-resnet-gan-patch-12pct.safetensors").exists()
    res = subprocess.run(["bash", "bench/gpu_carry.sh", "--restore"], cwd=repo, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    after = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before and not (tmp_path / "aside").exists()
