"""Every bad input is one line (issue 11): a ``ValueError``/``TypeError`` naming the argument, the value and what
was expected; on the command line, one ``error:`` line on stderr and exit code 2. Never a traceback, never a
silent acceptance, and no file written or changed on the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robust import cli, testing
from robust.attacks import GanPatch, LaVAN, LpAttack, NoisePatch, UniversalPatch, evaluate, make_attack
from robust.augment import PatchMixing
from robust.io import check_writable
from robust.metrics import Counts
from robust.presets import parse_task
from robust.runner import parse_spec

RESNET = "zoo:digits-m/resnet"
NAN, INF = float("nan"), float("inf")
BIG = 2**70


# -- the workspace: a tmp dir with files in it, the cwd of every test; nothing in it may change -----------------

class Workspace:
    """The tmp dir tests run in; ``write`` adds an input file (and takes it into the snapshot)."""

    def __init__(self, root: Path, snapshot):
        self.root, self.snapshot = root, snapshot
        (root / "keep.txt").write_text("do not touch\n")
        (root / "sub").mkdir()
        (root / "sub" / "data.bin").write_bytes(bytes(range(256)))
        (root / "folder.png").mkdir()  # a directory with a file's name
        self.before = snapshot(root)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        self.before = self.snapshot(self.root)
        return path


@pytest.fixture
def ws(tmp_path, monkeypatch, tree_snapshot):
    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.chdir(root)
    space = Workspace(root, tree_snapshot)
    yield space
    assert tree_snapshot(root) == space.before, "a bad input changed or created files"


# -- the Python API ----------------------------------------------------------------------------------------------

API = [
    # NaN, infinite, negative or boolean budgets
    (lambda: LpAttack(eps=NAN), "eps=nan"),
    (lambda: LpAttack(eps=INF), "eps=inf"),
    (lambda: LpAttack(eps=-0.1), "eps=-0.1"),
    (lambda: LpAttack(eps=True), "eps=True"),
    (lambda: LpAttack(alpha=NAN), "alpha=nan"),
    (lambda: LpAttack(alpha=-1.0), "alpha=-1.0"),
    (lambda: LpAttack(steps=True), "steps=True"),
    (lambda: LpAttack(options="abc"), "options='abc'"),
    (lambda: LaVAN(step_size=NAN), "step_size=nan"),
    (lambda: LaVAN(step_size=INF), "step_size=inf"),
    (lambda: LaVAN(step_size=-0.01), "step_size=-0.01"),
    (lambda: GanPatch(lambda_adv=NAN), "lambda_adv=nan"),
    (lambda: GanPatch(lambda_gan=-1.0), "lambda_gan=-1.0"),
    (lambda: GanPatch(lambda_tv=INF), "lambda_tv=inf"),
    (lambda: GanPatch(refine_step=NAN), "refine_step=nan"),
    (lambda: GanPatch(refine=True), "refine=True"),
    (lambda: GanPatch(refine_loss="mse"), "refine_loss='mse'"),
    (lambda: GanPatch(bound=NAN), "bound=nan"),
    (lambda: NoisePatch(bound=0.0), "bound=0.0"),
    (lambda: UniversalPatch(bound=2.0), "bound=2.0"),
    (lambda: UniversalPatch(rotation=NAN), "rotation=nan"),
    (lambda: UniversalPatch(rotation="x"), "rotation='x'"),
    (lambda: UniversalPatch(scale="ab"), "scale='ab'"),
    (lambda: UniversalPatch(scale=(NAN, 1.0)), "scale=(nan, 1.0)"),
    (lambda: UniversalPatch(scale=(0.5,)), "scale=(0.5,)"),
    (lambda: NoisePatch(area=NAN), "area=nan"),
    (lambda: NoisePatch(area=True), "area=True"),
    # seeds: unsigned 64-bit integers
    (lambda: NoisePatch(seed=2**64), "seed=18446744073709551616"),
    (lambda: NoisePatch(seed=-1), "seed=-1"),
    (lambda: NoisePatch(seed=True), "seed=True"),
    (lambda: LpAttack(seed=BIG), f"seed={BIG}"),
    (lambda: make_attack("lavan", seed=2**64), "seed=18446744073709551616"),
    (lambda: PatchMixing(seed=2**64), "seed=18446744073709551616"),
    (lambda: PatchMixing(seed=-1), "seed=-1"),
    # Patch Mixing's numbers
    (lambda: PatchMixing(ratio="ab"), "ratio='ab'"),
    (lambda: PatchMixing(ratio=(0.1,)), "ratio=(0.1,)"),
    (lambda: PatchMixing(ratio=NAN), "ratio=nan"),
    (lambda: PatchMixing(label_smoothing="x"), "label_smoothing='x'"),
    (lambda: PatchMixing(label_smoothing=NAN), "label_smoothing=nan"),
    (lambda: PatchMixing(p="x"), "p='x'"),
    (lambda: PatchMixing(p=NAN), "p=nan"),
]


@pytest.mark.parametrize(("build", "needle"), API, ids=[n for _, n in API])
def test_api_bad_numbers_and_seeds(ws, build, needle):
    with pytest.raises(ValueError) as err:
        build()
    message = str(err.value)
    assert needle in message and "is not valid; expected" in message and "\n" not in message


@pytest.fixture(scope="module")
def resnet_and_digits():
    from robust.data import load_dataset
    from robust.models import load_model

    return load_model(RESNET, device="cpu"), load_dataset("digits-m", "test").subset(slice(0, 8))


WRONG_TYPES = [
    (lambda m, d: m(d.images.float().numpy()), "x must be a torch.Tensor of images, got ndarray."),
    (lambda m, d: m(d.images), "x has dtype torch.uint8; expected float images"),
    (lambda m, d: make_attack("lavan", steps=1)(m, d.images / 255, d.labels.tolist()),
     "y must be a torch.Tensor of class indices, got list."),
    (lambda m, d: evaluate("lavan", m, d),
     "attack must be a robust Attack (see make_attack), got str."),
]


@pytest.mark.parametrize(("call", "needle"), WRONG_TYPES, ids=[n.split(";")[0][:40] for _, n in WRONG_TYPES])
def test_a_wrong_type_is_an_input_error_and_a_type_error(ws, resnet_and_digits, call, needle):
    """One exception that both the CLI's one-line path (``InputError``) and Python's convention (``TypeError``)
    catch."""
    from robust import InputError

    model, data = resnet_and_digits
    with pytest.raises(InputError) as err:
        call(model, data)
    assert isinstance(err.value, TypeError) and needle in str(err.value) and "\n" not in str(err.value)


def test_decision_labels_need_one_logit_per_class(ws, resnet_and_digits):
    from robust.data import ImageSet
    from robust.model_data import decision_labels

    model, data = resnet_and_digits
    three = ImageSet(data.images, data.labels % 3, ["a", "b", "c"], "three-class")
    with pytest.raises(ValueError, match=r"model gives outputs of shape \(8, 10\) on 'three-class'; expected N x 3"):
        decision_labels(model, three)


OCCLUSION = [
    ("patch-drop", {"seed": 2**64}, "seed=18446744073709551616"),
    ("patch-mixing", {"seed": -1}, "seed=-1"),
    ("selectivity", {"seed": True}, "seed=True"),
    ("patch-shuffle", {"seed": 2**64 - 1, "seeds": 2}, "expected seed + seeds <= 2**64"),
    ("patch-drop", {"samples": True}, "samples=True"),
    ("patch-drop", {"samples": 9}, "samples=9 is not valid: it is more than the 8 images of"),
]


@pytest.mark.parametrize(("fn", "kwargs", "needle"), OCCLUSION, ids=[f"{f}-{n}" for f, _, n in OCCLUSION])
def test_occlusion_seeds(ws, resnet_and_digits, fn, kwargs, needle):
    from robust.evaluations import run_evaluation

    model, data = resnet_and_digits
    with pytest.raises(ValueError, match=r"is not valid") as err:
        run_evaluation(fn, model, data, **kwargs)
    assert needle in str(err.value)


def test_a_fixed_evaluation_keyword_is_refused(ws, resnet_and_digits):
    from robust.evaluations import run_evaluation

    with pytest.raises(ValueError, match=r"'order' is fixed by the evaluation \(order='salient'\)"):
        run_evaluation("salient-drop", *resnet_and_digits, order="random")


def _evaluation(method: str, **params) -> dict:
    return {"evaluation": method, "params": params}


TASKS = [
    (_evaluation("patch-drop", levelz=[0.1]), "does not take the parameter 'levelz' (did you mean levels?); expected "
     "some of ['fill', 'grid', 'levels', 'order', 'seeds']"),
    (_evaluation("patch-drop", levels="abc"), "levels='abc' is not valid"),
    (_evaluation("patch-drop", levels=[0.1, 2.0]), "levels=[0.1, 2.0] is not valid"),
    (_evaluation("patch-drop", levels=[NAN]), "levels=[nan] is not valid"),
    (_evaluation("patch-drop", grid="8"), "grid='8' is not valid"),
    (_evaluation("patch-drop", grid=True), "grid=True is not valid"),
    (_evaluation("patch-drop", order="sideways"), "order='sideways' is not valid"),
    (_evaluation("patch-drop", fill="blue"), "fill='blue' is not valid"),
    (_evaluation("patch-drop", seeds="3"), "seeds='3' is not valid"),
    (_evaluation("salient-drop", order="random"), "'order' is fixed by the evaluation (order='salient')"),
    (_evaluation("selectivity-rise", saliency="gradcam"), "'saliency' is fixed by the evaluation"),
    (_evaluation("selectivity", masks=0), "masks=0 is not valid"),
    (_evaluation("patch-mixing", ratios=0.5), "ratios=0.5 is not valid"),
    (_evaluation("patch-shuffle", grids=[0]), "grids=[0] is not valid"),
    (_evaluation("patch-shuffle", seed=1), "params key 'seed' is set by the run"),
    ({"evaluation": "patch-drop", "params": "abc"}, "params='abc' is not valid; expected a table"),
    ({"attack": "gan-patch", "train": "abc"}, "train='abc' is not valid; expected a table"),
    ({"attack": "lp", "params": {"eps": NAN}}, "eps=nan is not valid"),
]


@pytest.mark.parametrize(("table", "needle"), TASKS, ids=[n[:40] for _, n in TASKS])
def test_presets_check_every_parameter_when_parsed(ws, table, needle):
    with pytest.raises(ValueError) as err:
        parse_task("mine", table)
    assert needle in str(err.value) and str(err.value).startswith("preset 'mine'")


SPECS = [
    ({"seeds": [BIG]}, f"seeds=[{BIG}] is not valid"),
    ({"seeds": [-1]}, "seeds=[-1] is not valid"),
    ({"seeds": [True]}, "seeds=[True] is not valid"),
    ({"seeds": [0, 0]}, "seeds=[0, 0] is not valid"),
    ({"heldout_detector": "yes"}, "heldout_detector='yes' is not valid"),
    ({"detector": 0}, "detector=0 is not valid; expected true or false"),
    ({"attacks": [{"preset": "pgd-linf-8", "name": "x", "params": "abc"}]}, "params='abc' is not valid"),
    ({"attacks": [{"preset": "gan-patch-8pct", "name": "x", "train": "abc"}]}, "train='abc' is not valid"),
    ({"evaluations": [{"preset": "patch-drop", "name": "x", "train": {"epochs": 1}}]}, "the key 'train' is for"),
    ({"evaluations": [{"preset": "patch-drop", "name": "x", "params": {"levelz": [0.5]}}]},
     "does not take the parameter 'levelz'"),
    ({"evaluations": [{"name": "x", "evaluation": "patch-drop", "params": "abc"}]}, "params='abc' is not valid"),
]


@pytest.mark.parametrize(("change", "needle"), SPECS, ids=[n[:40] for _, n in SPECS])
def test_leaderboard_specs(ws, change, needle):
    table = {"dataset": "digits-m", "models": [RESNET], "attacks": ["noise-patch-8pct"], **change}
    with pytest.raises(ValueError) as err:
        parse_spec(table)
    assert needle in str(err.value) and str(err.value).startswith("spec: ")


def _measured(**changes) -> testing.Measured:
    counts = Counts(n=10, clean_correct=8, adv_correct=6, success=2, target_hit=1, success_all=4,
                    target_hit_all=1, targeted=True)
    fields = {"model": RESNET, "task": "noise-patch-8pct", "dataset": "digits-m", "samples": 10, "seed": 0,
              "key": "k", "counts": counts, **changes}
    return testing.Measured(**fields)


GOOD_BASELINE = {"model": RESNET, "task": "noise-patch-8pct", "dataset": "digits-m", "samples": 10, "seed": 0,
                 "measure": "tcs", "value": 0.125}
BASELINES = [
    ([GOOD_BASELINE], "holds a JSON list"),
    ({k: v for k, v in GOOD_BASELINE.items() if k != "value"}, "has value=None; expected a finite number"),
    ({**GOOD_BASELINE, "value": "x"}, "has value='x'; expected a finite number"),
    ({**GOOD_BASELINE, "value": True}, "has value=True; expected a finite number"),
    ({**GOOD_BASELINE, "model": "zoo:digits-m/vit"}, "recorded with key='zoo:digits-m/vit', this run has "
                                                     f"key={RESNET!r}; refusing to compare (pass key="),
    ({**GOOD_BASELINE, "seed": 1}, "recorded with seed=1, this run has seed=0; refusing to compare"),
]


@pytest.mark.parametrize(("content", "needle"), BASELINES, ids=[n[:30] for _, n in BASELINES])
def test_baselines_from_elsewhere_are_refused(ws, content, needle):
    path = ws.write("baseline.json", json.dumps(content))
    with pytest.raises(ValueError) as err:
        testing.no_regression(_measured(), baseline=path, min_correct=0)  # 8 images: the file is what is tested
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_the_good_baseline_still_compares(ws):
    path = ws.write("baseline.json", json.dumps(GOOD_BASELINE))
    testing.no_regression(_measured(), baseline=path, min_correct=0)  # TCS 1/8 == 0.125: no regression


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    from torch import nn

    from robust.models.checkpoint import save_weights

    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_weights(path, nn.Linear(64, 10), arch="robust.models.zoo.archs:resnet", name="tiny", num_classes=10,
                 input_size=(3, 32, 32), mean=(0.5,) * 3, std=(0.5,) * 3, class_names=[str(i) for i in range(10)])
    return path.read_bytes()


@pytest.mark.parametrize("reader", ["read_state_dict", "read_header"])
@pytest.mark.parametrize("keep", [0.5, 0.01, 0.0])
def test_truncated_checkpoints(ws, checkpoint_bytes, reader, keep):
    from robust.models import checkpoint

    path = ws.write("model.safetensors", "")
    path.write_bytes(checkpoint_bytes[: int(len(checkpoint_bytes) * keep)])
    ws.before = ws.snapshot(ws.root)
    with pytest.raises(ValueError) as err:
        getattr(checkpoint, reader)(path)
    message = str(err.value)
    assert f"checkpoint {str(path)!r} is truncated or not a safetensors file" in message and "\n" not in message


@pytest.mark.slow  # rebuilds digits-m from MNIST and the photos: 11 s on 2 cores
def test_a_truncated_digits_m_cache_is_rebuilt(tmp_path, monkeypatch, capsys):
    from robust.data import digits_m

    monkeypatch.setenv("ROBUST_CACHE", str(tmp_path / "cache"))
    digits_m._arrays.cache_clear()
    try:
        path = digits_m.cache_path()
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": ")  # a header cut short
        test = digits_m.load("test")
        assert test.images.shape == (1000, 3, 32, 32) and len(test) == 1000
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # rebuilt in place, no temp file left
        digits_m._arrays.cache_clear()
        assert digits_m.load("test").labels.tolist() == test.labels.tolist()  # and now it reads back
        assert capsys.readouterr() == ("", "")
    finally:
        digits_m._arrays.cache_clear()


UNWRITABLE = [("folder.png", "is a directory"), ("keep.txt/x.png", "'keep.txt' is not a directory"),
              ("keep.txt/deeper/x.png", "'keep.txt' is not a directory")]


@pytest.mark.parametrize(("path", "needle"), UNWRITABLE)
def test_check_writable(ws, path, needle):
    with pytest.raises(ValueError) as err:
        check_writable(path, "--out")
    assert needle.replace("'keep.txt'", repr(str(ws.root / "keep.txt"))) in str(err.value)
    assert str(err.value).startswith(f"--out {path!r}")


def _read_only(ws, monkeypatch) -> Path:
    """A directory this process cannot write into (root can write anywhere: then os.access is told so)."""
    ro = ws.root / "ro"
    ro.mkdir(mode=0o555)
    ws.before = ws.snapshot(ws.root)
    if os.access(ro, os.W_OK):
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro else real(p, mode, **kw))
    return ro


def test_check_writable_read_only_dir(ws, monkeypatch):
    _read_only(ws, monkeypatch)
    with pytest.raises(ValueError, match=r"cannot be written: the directory .*ro' is not writable"):
        check_writable("ro/new/x.png", "--plot")
    assert check_writable("sub/new/deeper/x.png", "--plot") == Path("sub/new/deeper/x.png")  # creates nothing


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_check_writable_tries_where_os_access_says_yes(ws):
    """/proc: os.access says yes to root (CI containers run as root), yet no file can be made there."""
    with pytest.raises(ValueError, match=r"--robust-report '/proc/report.json' cannot be written"):
        check_writable("/proc/report.json", "--robust-report")
    assert not any(p.name.startswith(".robust-probe-") for p in ws.root.iterdir())
    assert check_writable("new/report.json", "--robust-report") == Path("new/report.json")
    assert not any(p.name.startswith(".robust-probe-") for p in ws.root.iterdir())  # the probe is gone


class _Config:
    def __init__(self, **options):
        self.options = {"--robust-samples": None, "--robust-seed": 0, "--robust-report": None,
                        "--robust-update-baselines": False, **options}

    def getoption(self, name):
        return self.options[name]

    def addinivalue_line(self, *args):
        pass


@pytest.mark.parametrize(("options", "needle"), [
    ({"--robust-report": "folder.png"}, "--robust-report 'folder.png' is a directory"),
    ({"--robust-report": "keep.txt/report.json"}, "is not a directory"),
    ({"--robust-seed": -1}, "--robust-seed -1 is not valid"),
    ({"--robust-seed": 2**64}, "--robust-seed 18446744073709551616 is not valid"),
])
def test_pytest_plugin_checks_its_options_first(ws, options, needle):
    from robust import pytest_plugin

    with pytest.raises(pytest.UsageError) as err:
        pytest_plugin.pytest_configure(_Config(**options))
    assert needle in str(err.value)


# -- the command line --------------------------------------------------------------------------------------------

def _main(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return ex.value.code, out, err


def _one_error_line(code: int, out: str, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    return lines[0]


ATTACK = ("attack", "run", "noise-patch", "--model", RESNET)
TRAIN = ("attack", "train", "gan-patch", "--victim", RESNET, "--out", "g.safetensors")
OCC = ("occlusion", "run", "patch-drop", "--model", RESNET)
CLI = [
    # usage errors from the parser: one line, not a panel
    (("attack", "run", "noise-patch", "--model", RESNET, "--samples", "abc"), "Invalid value for '--samples'"),
    (("attack", "run", "noise-patch", "--model", RESNET, "--bogus"), "No such option: --bogus"),
    (("attack", "run"), "Missing argument 'attack'"),
    (("attack", "run", "noise-patch"), "Missing option '--model'"),
    (("attack", "run", "noise-patch", "--model", RESNET, "--samples"), "'--samples' requires an argument"),
    (("bogus",), "No such command 'bogus'"),
    (("occlusion", "run", "patch-drop", "--model", RESNET, "--grid", "abc"), "Invalid value for '--grid'"),
    (("data", "show", "digits-m", "-n", "abc"), "Invalid value for '-n'"),
    (("attack", "train", "gan-patch", "--victim", RESNET, "--epochs", "1.5"), "Invalid value for '--epochs'"),
    (("leaderboard", "run"), "Missing argument 'spec'"),
    # attack run
    ((*ATTACK, "--samples", "0"), "--samples 0 is not valid"),
    ((*ATTACK, "--samples", "5000"), "samples=5000 is not valid: it is more than the 1000 images of"),
    ((*ATTACK, "--batch-size", "0"), "--batch-size 0 is not valid"),
    ((*ATTACK, "--seed", "-1"), "--seed -1 is not valid; expected an integer in [0, 2**64)"),
    ((*ATTACK, "--seed", str(BIG)), f"--seed {BIG} is not valid"),
    ((*ATTACK, "--param", "seed=3"), "--param seed=... is not valid; expected the option --seed"),
    (("attack", "run", "lp", "--model", RESNET, "--param", "eps=nan"), "eps=nan is not valid"),
    (("attack", "run", "lp", "--model", RESNET, "--param", "alpha=-1"), "alpha=-1 is not valid"),
    (("attack", "run", "lavan", "--model", RESNET, "--param", "step_size=inf"), "step_size=inf is not valid"),
    (("attack", "run", "nope", "--model", RESNET), "attack 'nope' is unknown"),
    # attack train
    ((*TRAIN, "--epochs", "0"), "--epochs 0 is not valid"),
    (("attack", "train", "universal-patch", "--victim", RESNET, "--out", "u.safetensors", "--steps", "0"),
     "--steps 0 is not valid"),
    ((*TRAIN, "--train-samples", "0"), "--train-samples 0 is not valid"),
    ((*TRAIN, "--batch-size", "-1"), "--batch-size -1 is not valid"),
    ((*TRAIN, "--seed", str(2**64)), "--seed 18446744073709551616 is not valid"),
    # occlusion run
    ((*OCC, "--samples", "0"), "--samples 0 is not valid"),
    ((*OCC, "--samples", "5000"), "samples=5000 is not valid: it is more than the 1000 images of"),
    ((*OCC, "--seeds", "0"), "--seeds 0 is not valid"),
    ((*OCC, "--grid", "0"), "--grid 0 is not valid"),
    ((*OCC, "--batch-size", "0"), "--batch-size 0 is not valid"),
    ((*OCC, "--seed", str(2**64)), "--seed 18446744073709551616 is not valid"),
    ((*OCC, "--seed", str(2**64 - 1), "--seeds", "2"), "expected seed + seeds <= 2**64"),
    ((*OCC, "--param", "levelz=1"), "does not take the parameter 'levelz'"),
    ((*OCC, "--param", "levels=abc"), "levels='abc' is not valid"),
    ((*OCC, "--param", "seeds=2"), "expected the option --seeds"),
    ((*OCC, "--plot", "folder.png"), "--plot 'folder.png' is a directory"),
    ((*OCC, "--plot", "keep.txt/x.png"), "cannot be written"),
    ((*OCC, "--plot", "x.jpg"), "expected a .png path"),
    (("occlusion", "run", "patch-dropp", "--model", RESNET), "evaluation 'patch-dropp' is unknown"),
    # data show
    (("data", "show", "digits-m", "-n", "0"), "n=0 is not valid"),
    (("data", "show", "digits-m", "--seed", "-1"), "--seed -1 is not valid"),
    (("data", "show", "digits-m", "--seed", str(2**64)), "--seed 18446744073709551616 is not valid"),
    (("data", "show", "digits-m", "--out", "folder.png"), "--out 'folder.png' is a directory"),
    (("data", "show", "digits-m", "--out", "keep.txt/grid.png"), "cannot be written"),
    (("data", "show", "digits-m", "--out", "grid.jpg"), "expected a .png path"),
    # zoo train: the existing checks
    (("zoo", "train", "lenet"), "arch='lenet'"),
    (("zoo", "train", "resnet", "--epochs", "0"), "epochs=0"),
    (("zoo", "train", "resnet", "--split", "test"), "split='test' is not valid for training"),
    (("attack", "run", "noise-patch", "--model", RESNET, "--split", "train"), "--split 'train' is not valid"),
    (("attack", "train", "universal-patch", "--victim", RESNET, "--out", "u.safetensors", "--split", "val"),
     "--split 'val' is not valid; expected 'train' or 'fit'"),
    (("attack", "train", "universal-patch", "--victim", RESNET, "--publish", "--split", "fit"),
     "--split fit and --publish"),
    ((*OCC, "--split", "fit"), "--split 'fit' is not valid"),
]


@pytest.mark.parametrize(("argv", "needle"), CLI, ids=[" ".join(a[:2]) + ": " + n[:30] for a, n in CLI])
def test_cli_bad_input_is_one_line(ws, capsys, argv, needle):
    line = _one_error_line(*_main(capsys, *argv))
    assert needle in line, line


def test_cli_plot_in_a_read_only_dir(ws, capsys, monkeypatch):
    _read_only(ws, monkeypatch)
    line = _one_error_line(*_main(capsys, *OCC, "--plot", "ro/curve.png"))
    assert "--plot 'ro/curve.png' cannot be written" in line and "is not writable" in line


LEADERBOARD = [
    ("title = [", "is not valid TOML"),
    ('dataset = "digits-m"\nmodels = ["zoo:digits-m/resnet"]\nattacks = ["noise-patch-8pct"]\nsampels = 5\n',
     "key 'sampels' is unknown"),
    ('dataset = "digits-m"\nmodels = ["zoo:digits-m/resnet"]\n'
     'attacks = [{ name = "x", attack = "noise-patch", params = "abc" }]\n', "params='abc' is not valid"),
    ('dataset = "digits-m"\nmodels = ["zoo:digits-m/resnet"]\n'
     'attacks = [{ preset = "pgd-linf-8", name = "x", params = "abc" }]\n', "params='abc' is not valid"),
    ('dataset = "digits-m"\nmodels = ["zoo:digits-m/resnet"]\n'
     'attacks = [{ preset = "gan-patch-8pct", name = "x", train = "abc" }]\n', "train='abc' is not valid"),
    ('dataset = "digits-m"\nmodels = ["zoo:digits-m/resnet"]\n'
     'evaluations = [{ preset = "patch-drop", name = "x", params = { levels = [0.5, 7] } }]\n',
     "levels=[0.5, 7] is not valid"),
    ('dataset = "digits-m"\nmodels = ["zoo:digits-m/resnet"]\nevaluations = ["patch-drop"]\n'
     f"seeds = [{BIG}]\n", f"seeds=[{BIG}] is not valid"),
]


@pytest.mark.parametrize(("text", "needle"), LEADERBOARD, ids=[n[:30] for _, n in LEADERBOARD])
def test_leaderboard_run_on_a_bad_spec(ws, capsys, text, needle):
    ws.write("board.toml", text)
    line = _one_error_line(*_main(capsys, "leaderboard", "run", "board.toml"))
    assert needle in line, line
    assert not (ws.root / "board").exists()  # no board directory, no results.sqlite


def test_leaderboard_run_on_a_missing_spec(ws, capsys):
    assert "spec 'nope.toml' is not a file" in _one_error_line(*_main(capsys, "leaderboard", "run", "nope.toml"))


def test_normal_exits_are_unchanged(ws, capsys):
    code, out, err = _main(capsys, "--help")
    assert code == 0 and "Usage:" in out and err == ""
    code, out, err = _main(capsys, "attack")  # a bare group prints its help, as before, with code 2
    assert code == 2 and "Usage:" in out and "run" in out and err == ""
    code, out, err = _main(capsys, "data", "list", "--json")
    assert code == 0 and "digits-m" in json.loads(out)["embedded"] and err == ""


@pytest.mark.slow
@pytest.mark.subprocess
def test_console_script_path(ws):
    """The real process (``python -m robust``): started together, a few seconds in all (12 s on 2 busy cores: slow;
    ``test_cli.py::test_console_entry_point_prints_one_clean_line`` keeps a real process in the default run)."""
    ws.write("board.toml", 'dataset = "digits-m"\nmodels = ["zoo:digits-m/resnet"]\nevaluations = ["patch-drop"]\n'
                           f"seeds = [{BIG}]\n")
    cases = [(("attack", "run", "noise-patch", "--model", RESNET, "--samples", "abc"), "Invalid value for '--samples'"),
             (("occlusion", "run", "patch-drop", "--model", RESNET, "--seed", str(2**64)), "--seed 1844674407370955"),
             (("leaderboard", "run", "board.toml"), f"seeds=[{BIG}] is not valid"),
             (("data", "show", "digits-m", "--out", "folder.png"), "--out 'folder.png' is a directory")]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, "-m", "robust", *argv], cwd=ws.root, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv, _ in cases]
    for proc, (_, needle) in zip(procs, cases, strict=True):
        out, err = proc.communicate(timeout=120)
        assert needle in _one_error_line(proc.returncode, out, err)

