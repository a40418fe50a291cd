"""The 224-px kernels on one CUDA GPU, each against its peer, on the same random batch in one run.

Per timm model (random weights drawn from seed 0, ``timm:NAME?pretrained=false`` through
``robust.models.load_model``; labels are the model's own clean predictions, so every image starts correctly
classified; how easily a random-weight model falls decides how much of their steps robust's PGD and LaVAN, which
stop an image at its first success, actually run: ``robust_acc`` and ``success`` say so):

- ``cam``: ``robust.cam`` (batched Grad-CAM) against ``pytorch_grad_cam``: pytorch-grad-cam's own ``GradCAM``
  object on the same Backbone, target layer (``Backbone.cam_layer``) and token reshape as robust's
  ``pgc-gradcam`` method, built once outside the clock;
- ``gan_patch``: gan-patch with an untrained generator (random weights, the shapes of one trained at 224 px): one
  Grad-CAM placement and one generator forward per batch; ``gan_patch_refine``: the same plus ``refine`` steps of
  its default refinement (Adam) on the patch; both against ``lavan`` (LaVAN, ``lavan_steps`` Adam steps, its
  defaults otherwise: an image stops at its first success), at the same patch area;
- ``occlusion``: ``run_evaluation("patch-drop")`` at the paper's 14 x 14 grid of 16-px cells (10 levels,
  ``seeds`` seeds) against ``bare_forwards``: the same number of plain forward passes over the same batch;
- ``pgd``: PGD-10 at 8/255 (step 2/255) through robust's ``lp`` attack against ``torchattacks_pgd``
  (``torchattacks.PGD``, same budget, step and random start);

and once, model-independent: ``patch_mixing`` (``robust.augment.PatchMixing``, 14 x 14 grid, p = 1) against
``kornia_cutmix`` (kornia's ``RandomCutMixV2``) and ``clone`` (a bare ``x.clone()`` of the batch).

Each kernel: the median of ``--repeats`` timed calls after one untimed warm-up (``bench/_timing.median_time``,
clock read after a device sync; LaVAN at most 2 timed calls), images/s, and on CUDA the peak memory allocated
during its calls (model and batch included; null on the CPU, which has no such counter). On CUDA every timed call
runs under ``torch.cuda.set_sync_debug_mode("error")`` (restored afterwards; the warm-up and the setup are
outside): a hidden host-device sync raises, the row records it as ``sync_error`` (its first site) with
``sync_sites`` (every site of one more call under ``"warn"``, with counts), and the kernel is then timed without
the check. A kernel that fails (out of memory, a missing package) records ``error`` and the bench goes on.
``ratio``: the kernel's time over each peer's.

Prints a progress line per kernel (a kernel that syncs: the sites of one call, with counts: a count that grows with
the steps is a sync inside a step) and one JSON object on its last line; ``--out`` gets that object after each model,
so a run stopped at its time limit keeps what it measured.
Usage: python bench/gpu.py [--models resnet50,vit_base_patch16_224,...] [--kernels cam,attack,occlusion,pgd,augment]
                           [--batch 128] [--repeats 5] [--device cuda] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from _timing import median_time, synchronize

warnings.filterwarnings("ignore", category=FutureWarning)

SIZE = 224
GRID = 14  # the paper's 14 x 14 grid of 16-px cells at 224 px
LEVELS = [k / 10 for k in range(10)]  # patch-drop's default levels, stated: they set the number of forwards
EPS, ALPHA, PGD_STEPS = 8 / 255, 2 / 255, 10
AREA = 0.08  # gan-patch's and LaVAN's default patch area (a 63 px square at 224 px)
MODELS = "resnet50,vit_base_patch16_224,swin_tiny_patch4_window7_224,mixer_b16_224"
QUICK_MODELS = "resnet18,vit_tiny_patch16_224"
#: sizes of a full run and of --quick (a CPU check of the script)
FULL = {"batch": 128, "repeats": 5, "lavan_steps": 100, "refine": 10, "seeds": 3}
QUICK = {"batch": 2, "repeats": 1, "lavan_steps": 5, "refine": 2, "seeds": 1}
HEAVY_REPEATS = 2  # LaVAN: at most this many timed calls (each is up to lavan_steps forward + backward passes)
#: kernel -> the kernels it is compared with (ratio: its time over theirs)
PEERS = {"cam": ("pytorch_grad_cam",), "gan_patch": ("lavan",), "gan_patch_refine": ("lavan",),
         "occlusion": ("bare_forwards",), "pgd": ("torchattacks_pgd",),
         "patch_mixing": ("kornia_cutmix", "clone"), "kornia_cutmix": ("clone",)}
GROUPS = ("cam", "attack", "occlusion", "pgd", "augment")  # what --kernels chooses from
#: the peers from other libraries (their rows say which: a sync there is the library's own)
LIBRARIES = {"pytorch_grad_cam": "grad-cam", "kornia_cutmix": "kornia", "torchattacks_pgd": "torchattacks"}
SYNC_ERROR = "synchronizing CUDA operation"  # torch's message under set_sync_debug_mode("error")
ROBUST_DIR = Path(__file__).resolve().parents[1] / "robust"  # replaced by the imported package's own in main()


@dataclasses.dataclass
class Kernel:
    """One timed kernel: ``setup()`` (a context manager, outside the clock) yields the call to time, on ``images``
    images; ``summary(result)`` (optional) describes the last call's result, outside the clock."""

    name: str
    setup: Callable[[], contextlib.AbstractContextManager[Callable[[], object]]]
    images: int
    repeats: int
    summary: Callable[[object], dict] | None = None
    info: dict = dataclasses.field(default_factory=dict)


# -- the sync check ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def sync_debug(device: torch.device, mode: str) -> Iterator[None]:
    """``torch.cuda.set_sync_debug_mode(mode)`` for the block on CUDA (the previous mode restored); nothing
    elsewhere."""
    if device.type != "cuda":
        yield
        return
    previous = torch.cuda.get_sync_debug_mode()
    _set_sync_debug_mode(mode)
    try:
        yield
    finally:
        _set_sync_debug_mode(previous)


def _set_sync_debug_mode(mode: str | int) -> None:
    with warnings.catch_warnings():  # some torch versions warn that the mode is a prototype, at every call
        warnings.simplefilter("ignore")
        torch.cuda.set_sync_debug_mode(mode)


def _short(filename: str) -> str:
    path = Path(filename)
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(ROBUST_DIR.parent))
    parts = path.parts
    if "site-packages" in parts:
        return str(Path(*parts[parts.index("site-packages") + 1:]))
    return str(path)


def site(frames: list[traceback.FrameSummary]) -> str:
    """Where a sync happened: the innermost frame in robust's package, else the innermost one outside this
    script and the warnings module (a peer library's own line)."""
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(ROBUST_DIR)]
    others = [f for f in frames if Path(f.filename).resolve() != Path(__file__).resolve()
              and Path(f.filename).name != "warnings.py"]
    frame = (ours or others or frames)[-1]
    return f"{_short(frame.filename)}:{frame.lineno} ({frame.name})"


def _scan(fn: Callable[[], object], device: torch.device, sites: dict[str, int]) -> object:
    """Call ``fn`` under the ``"warn"`` sync mode and count each sync site (see ``site``) into ``sites``."""
    def hook(message, category, filename, lineno, file=None, line=None) -> None:
        if SYNC_ERROR in str(message):  # torch warns with the error's message
            where = site(traceback.extract_stack()[:-1])
            sites[where] = sites.get(where, 0) + 1

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = hook
        with sync_debug(device, "warn"):
            return fn()


def _first_then(first: Callable[[], object], rest: Callable[[], object]) -> Callable[[], object]:
    """A call that runs ``first`` the first time (median_time's warm-up) and ``rest`` after."""
    calls = 0

    def run() -> object:
        nonlocal calls
        calls += 1
        return first() if calls == 1 else rest()

    return run


def _checked(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    def run() -> object:
        with sync_debug(device, "error"):
            return fn()

    return run


# -- one kernel ---------------------------------------------------------------------------------------------------

def _error(e: BaseException) -> str:
    from robust.checks import first_line

    return f"{type(e).__name__}: {first_line(e)}"


def measure(kernel: Kernel, device: torch.device) -> dict:
    """Time ``kernel`` (see the module's docstring): ms, images_per_s, peak_mib, and sync_error / sync_sites /
    error where that happened."""
    row: dict = {"ms": None, "images_per_s": None, "peak_mib": None, "repeats": kernel.repeats, **kernel.info}
    if kernel.name in LIBRARIES:
        row["library"] = LIBRARIES[kernel.name]
    cuda = device.type == "cuda"
    last: dict = {}
    failed = False
    try:
        with kernel.setup() as fn:
            def call(fn=fn) -> None:
                last["out"] = fn()

            if cuda:
                synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            seconds = None
            try:
                seconds = median_time(_first_then(call, _checked(call, device)), kernel.repeats, device)
            except RuntimeError as e:
                if SYNC_ERROR not in str(e):
                    raise
                row["sync_error"] = f"{_error(e)} at {site(traceback.extract_tb(e.__traceback__))}"
            if seconds is None:  # a sync: every site of one call (the warm-up), then timed without the check
                synchronize(device)
                sites: dict[str, int] = {}
                seconds = median_time(_first_then(lambda: _scan(call, device, sites), call), kernel.repeats, device)
                row["sync_sites"] = sites
            if cuda:
                row["peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
            row["ms"] = round(seconds * 1e3, 3)
            row["images_per_s"] = round(kernel.images / seconds, 2)
            if kernel.summary is not None:
                with torch.no_grad():
                    row.update(kernel.summary(last.pop("out")))
    except Exception as e:  # out of memory, a missing package, a bug: recorded, and the bench goes on
        row["error"] = _error(e)
        failed = True
    last.clear()
    if failed and cuda:
        gc.collect()
        torch.cuda.empty_cache()
    return row


def add_ratios(rows: dict[str, dict]) -> None:
    """Each row's ``ratio``: its time over each peer's (null where either has no time)."""
    for name, peers in PEERS.items():
        if name in rows:
            rows[name]["ratio"] = {
                p: (round(rows[name]["ms"] / rows[p]["ms"], 3) if rows[name]["ms"] and rows.get(p, {}).get("ms")
                    else None) for p in peers if p in rows}


def ratio_line(rows: dict[str, dict]) -> str:
    """One progress line of every kernel's ratios to its peers."""
    parts = [f"{k}/{p} {'-' if v is None else v}" for k, row in rows.items() for p, v in row.get("ratio", {}).items()]
    return "  time ratios: " + ", ".join(parts)


def describe(name: str, row: dict) -> str:
    """One progress line for a kernel."""
    if "error" in row:
        return f"  {name}: FAILED {row['error']}"
    text = f"  {name}: {row['ms']:.1f} ms, {row['images_per_s']:.1f} images/s"
    if row["peak_mib"] is not None:
        text += f", peak {row['peak_mib']:.0f} MiB"
    if "sync_error" in row:
        text += f"; SYNC: {row['sync_error']}"
        sites = row.get("sync_sites", {})
        text += "; syncs in one call: " + (", ".join(f"{where} x{count}" for where, count in sites.items()) or "none")
    return text


# -- the kernels --------------------------------------------------------------------------------------------------

def augment_kernels(x: torch.Tensor, y: torch.Tensor, repeats: int) -> list[Kernel]:
    """Patch Mixing, kornia's CutMix and a bare clone of the batch ``x`` (labels ``y``)."""
    n = x.shape[0]

    @contextlib.contextmanager
    def patch_mixing():
        from robust.augment import PatchMixing

        aug = PatchMixing(GRID, ratio=(0.0, 0.5), p=1.0)
        yield lambda: aug(x, y)

    @contextlib.contextmanager
    def kornia_cutmix():
        from kornia.augmentation import RandomCutMixV2

        aug = RandomCutMixV2(p=1.0, data_keys=["input", "class"], use_correct_lambda=True)
        yield lambda: aug(x, y)

    @contextlib.contextmanager
    def clone():
        yield x.clone

    return [Kernel("patch_mixing", patch_mixing, n, repeats, info={"grid": GRID}),
            Kernel("kornia_cutmix", kornia_cutmix, n, repeats), Kernel("clone", clone, n, repeats)]


def model_kernels(model, x: torch.Tensor, x_u8: torch.Tensor, y: torch.Tensor, sizes: dict,
                  groups: tuple[str, ...]) -> list[Kernel]:
    """The per-model kernels of ``groups`` on the batch ``x`` (``x_u8``: the same images as uint8 on the CPU)
    with labels ``y``."""
    n, repeats = x.shape[0], sizes["repeats"]

    def success(res) -> dict:  # targeted patch attacks: the fraction of images classified as their target
        return {"success": float((model.logits(res.x_adv).argmax(1) == res.target).float().mean())}

    def robust_acc(res) -> dict:
        x_adv = res if isinstance(res, torch.Tensor) else res.x_adv
        return {"robust_acc": float((model.logits(x_adv).argmax(1) == y).float().mean())}

    @contextlib.contextmanager
    def robust_cam():
        from robust.cam import cam

        yield lambda: cam(model, x, y)

    @contextlib.contextmanager
    def library_cam():
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        from robust.cam import library_reshape
        from robust.models.state import preserved_grads

        # robust.cam's pgc-gradcam: the Backbone's Grad-CAM layer, its token reshape for token models
        reshape = library_reshape(model)
        targets = [ClassifierOutputTarget(int(t)) for t in y.tolist()]
        # GradCAM hooks the layer until released; its backward() leaves .grad on the parameters: both undone
        with preserved_grads(model):
            method = GradCAM(model=model, target_layers=[model.cam_layer], reshape_transform=reshape)
            try:
                yield lambda: method(input_tensor=x, targets=targets)
            finally:
                method.activations_and_grads.release()

    def gan_patch(refine: int):
        @contextlib.contextmanager
        def setup():
            from robust.attacks import GanPatch

            attack = GanPatch(area=AREA, refine=refine)
            # An untrained generator: random weights in the shapes a 224-px training would give (speed only).
            attack.num_classes, attack.image_size = model.num_classes, (3, SIZE, SIZE)
            attack.generator_net = attack._build().to(x.device).eval()
            yield lambda: attack(model, x, y)

        return setup

    @contextlib.contextmanager
    def lavan():
        from robust.attacks import make_attack

        attack = make_attack("lavan", steps=sizes["lavan_steps"], area=AREA)
        yield lambda: attack(model, x, y)

    @contextlib.contextmanager
    def occlusion():
        from robust.data import ImageSet
        from robust.evaluations import run_evaluation

        data = ImageSet(x_u8, y.cpu(), [str(i) for i in range(model.num_classes)], "random-224")
        yield lambda: run_evaluation("patch-drop", model, data, grid=GRID, levels=LEVELS, seeds=sizes["seeds"],
                                     batch_size=n)

    forwards = sizes["seeds"] * len(LEVELS)  # one batch: one forward per level and seed

    @contextlib.contextmanager
    def bare_forwards():
        def run() -> None:
            with torch.no_grad():
                for _ in range(forwards):
                    model.logits(x)

        yield run

    @contextlib.contextmanager
    def pgd():
        from robust.attacks import make_attack

        attack = make_attack("lp", method="pgd", eps=EPS, alpha=ALPHA, steps=PGD_STEPS, seed=0)
        yield lambda: attack(model, x, y)

    @contextlib.contextmanager
    def torchattacks_pgd():
        import torchattacks

        from robust.attacks.lp import _Logits

        # In eval mode: torchattacks hands the wrapped module back the training flag it found.
        attack = torchattacks.PGD(_Logits(model).eval(), eps=EPS, alpha=ALPHA, steps=PGD_STEPS, random_start=True)
        yield lambda: attack(x, y)

    heavy = min(repeats, HEAVY_REPEATS)
    plan = {
        "cam": [Kernel("cam", robust_cam, n, repeats), Kernel("pytorch_grad_cam", library_cam, n, repeats)],
        "attack": [Kernel("gan_patch", gan_patch(0), n, repeats, success, {"area": AREA}),
                   Kernel("gan_patch_refine", gan_patch(sizes["refine"]), n, repeats, success,
                          {"area": AREA, "refine": sizes["refine"]}),
                   Kernel("lavan", lavan, n, heavy, success, {"area": AREA, "steps": sizes["lavan_steps"]})],
        "occlusion": [Kernel("occlusion", occlusion, n, repeats, None,
                             {"grid": GRID, "levels": len(LEVELS), "seeds": sizes["seeds"], "forwards": forwards}),
                      Kernel("bare_forwards", bare_forwards, n, repeats, None, {"forwards": forwards})],
        "pgd": [Kernel("pgd", pgd, n, repeats, robust_acc, {"steps": PGD_STEPS, "eps": round(EPS, 6)}),
                Kernel("torchattacks_pgd", torchattacks_pgd, n, repeats, robust_acc,
                       {"steps": PGD_STEPS, "eps": round(EPS, 6)})],
    }
    return [k for g in groups if g in plan for k in plan[g]]


def bench_model(name: str, spec: str, x: torch.Tensor, x_u8: torch.Tensor, sizes: dict,
                groups: tuple[str, ...], device: torch.device) -> dict:
    """Load ``spec`` and time its kernels; a model that cannot be loaded is recorded as an error."""
    from robust.draws import seeded
    from robust.models import load_model

    print(f"{name} ({spec})", flush=True)
    try:
        model = seeded(lambda: load_model(spec, device=device), 0)  # the same random weights on every run
        if tuple(model.input_size) != (3, SIZE, SIZE):
            raise ValueError(f"--models {name!r} takes {model.input_size} images; expected a model of (3, {SIZE}, "
                             f"{SIZE}) images (timm's img_size option, e.g. {name}?img_size={SIZE}).")
        with torch.no_grad():  # the labels: the clean predictions, so every image starts correctly classified
            y = model.logits(x).argmax(1)
        synchronize(device)
    except Exception as e:
        print(f"  FAILED to load: {_error(e)}", flush=True)
        return {"spec": spec, "error": _error(e)}
    rows = {}
    for kernel in model_kernels(model, x, x_u8, y, sizes, groups):
        rows[kernel.name] = measure(kernel, device)
        print(describe(kernel.name, rows[kernel.name]), flush=True)
    add_ratios(rows)
    print(ratio_line(rows), flush=True)
    out = {"spec": spec, "family": model.family, "cam_layer": model.cam_layer_name, "kernels": rows}
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


# -- the run ------------------------------------------------------------------------------------------------------

def model_spec(name: str) -> str:
    """A timm name (optionally with options, ``NAME?img_size=224``) as a random-weight timm spec; a full spec (with
    a ``prefix:``) as it is."""
    if ":" in name:
        return name
    return f"timm:{name}{'&' if '?' in name else '?'}pretrained=false"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=None, help=f"comma-separated timm names or model specs (default "
                        f"{MODELS}; --quick: {QUICK_MODELS})")
    parser.add_argument("--kernels", default=",".join(GROUPS), help=f"comma-separated groups of kernels, of "
                        f"{', '.join(GROUPS)} (default all)")
    parser.add_argument("--batch", type=int, default=None, help=f"images per batch (default {FULL['batch']}; "
                        f"--quick: {QUICK['batch']})")
    parser.add_argument("--repeats", type=int, default=None, help=f"timed calls per kernel (default "
                        f"{FULL['repeats']}; --quick: {QUICK['repeats']})")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default cuda when available, else cpu)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and small models: a CPU check of the "
                        f"script ({QUICK})")
    parser.add_argument("--out", default=None, metavar="FILE", help="also write the JSON object to FILE (atomically)")
    args = parser.parse_args(argv)
    for key in ("batch", "repeats"):
        value = getattr(args, key)
        if value is not None and value < 1:
            parser.error(f"--{key} {value} is not valid; expected a positive integer.")
    groups = tuple(g.strip() for g in args.kernels.split(",") if g.strip())
    if not groups or not set(groups) <= set(GROUPS):
        parser.error(f"--kernels {args.kernels!r} is not valid; expected a comma-separated subset of {GROUPS}.")
    args.groups = groups
    models = args.models if args.models is not None else (QUICK_MODELS if args.quick else MODELS)
    args.model_names = [m.strip() for m in models.split(",") if m.strip()]
    if not args.model_names and groups != ("augment",):
        parser.error(f"--models {args.models!r} is not valid; expected at least one model name.")
    from robust.device import resolve_device

    try:
        args.device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except ValueError as e:
        parser.error(f"--device: {e}")
    if args.out is not None:
        from robust.io import check_writable

        try:
            check_writable(args.out, "--out")
        except ValueError as e:
            parser.error(str(e))
    return args


def versions() -> dict[str, str | None]:
    """The installed versions of the libraries the kernels come from (None: not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("robust-suite", "timm", *LIBRARIES.values()):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def main(argv: list[str] | None = None) -> dict:
    global ROBUST_DIR
    args = parse_args(argv)
    import robust

    ROBUST_DIR = Path(robust.__file__).resolve().parent
    device = args.device
    sizes = {**(QUICK if args.quick else FULL)}
    sizes.update({k: getattr(args, k) for k in ("batch", "repeats") if getattr(args, k) is not None})
    n = sizes["batch"]
    g = torch.Generator().manual_seed(0)
    x_u8 = torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    x = x_u8.to(device).float().div_(255)
    cuda = device.type == "cuda"
    result: dict = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None, "threads": torch.get_num_threads(), "batch": n,
        "size": SIZE, "quick": args.quick, "sync_check": cuda, "versions": versions(),
        "settings": {k: v for k, v in sizes.items() if k != "batch"}}
    print(f"bench/gpu.py: {result['device']}, torch {torch.__version__}, batch {n} at {SIZE} px, "
          f"{sizes['repeats']} repeats{', sync check on' if cuda else ''}", flush=True)
    if "augment" in args.groups:
        print("augment (model-independent)", flush=True)
        labels = torch.randint(0, 1000, (n,), generator=g).to(device)
        rows = {}
        for kernel in augment_kernels(x, labels, sizes["repeats"]):
            rows[kernel.name] = measure(kernel, device)
            print(describe(kernel.name, rows[kernel.name]), flush=True)
        add_ratios(rows)
        print(ratio_line(rows), flush=True)
        result["augment"] = rows
    save(result, args.out)
    result["models"] = {}
    for name in args.model_names if args.groups != ("augment",) else ():
        result["models"][name] = bench_model(name, model_spec(name), x, x_u8, sizes, args.groups, device)
        save(result, args.out)  # after each model: a run stopped at its time limit keeps what it measured
    line = json.dumps(result, allow_nan=False)
    print(line, flush=True)
    return result


def save(result: dict, out: Path | None) -> None:
    """Write ``result`` as one JSON line to ``out`` (atomically; nothing when None)."""
    if out is not None:
        from robust.io import atomic_write_text

        atomic_write_text(out, json.dumps(result, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
