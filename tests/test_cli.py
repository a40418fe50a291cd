import json
import re

import pytest
from typer.testing import CliRunner

from robust.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_info_json():
    res = _run("info", "--json", "--device", "cpu")
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["device"] == "cpu" and out["packages"]["torch"]


def test_zoo_list_json_has_accuracies():
    res = _run("zoo", "list", "--json")
    assert res.exit_code == 0
    models = json.loads(res.stdout)
    assert models["digits-m/resnet"]["test_accuracy"] >= 0.92
    assert "imagenet/efficientnet-lite0" in models


def test_data_show_writes_a_png(tmp_path):
    out = tmp_path / "grid.png"
    res = _run("data", "show", "digits-m", "-n", "20", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert info["n"] == 20 and len(info["labels"]) == 20
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_data_list():
    res = _run("data", "list", "--json")
    assert res.exit_code == 0 and "digits-m" in json.loads(res.stdout)["embedded"]


@pytest.mark.parametrize("args, needle", [
    (("data", "show", "nope"), "dataset 'nope' is unknown"),
    (("data", "show", "digits-m", "-n", "0"), "n=0"),
    (("data", "show", "digits-m", "--out", "x.jpg"), "expected a .png path"),
    (("zoo", "train", "lenet"), "arch='lenet'"),
    (("zoo", "train", "resnet", "--epochs", "0"), "epochs=0"),
    (("info", "--device", "tpu"), "device='tpu'"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, needle):
    res = _run(*args)
    assert res.exit_code == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.output


def test_unknown_command_is_a_usage_error():
    assert _run("zoo", "bogus").exit_code == 2


@pytest.mark.subprocess
def test_console_entry_point_prints_one_clean_line():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "robust", "data", "show", "nope"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: dataset 'nope' is unknown; expected one of ['digits-m', 'imagenet-crops', 'imagenet-photos'], "
        "'imagenet-val:PATH', "
        "'torchvision:NAME' or "
        "the path of an existing ImageFolder directory."]


def test_attack_run_json_counts():
    res = _run("attack", "run", "noise-patch", "--model", "zoo:digits-m/resnet", "--samples", "40",
               "--batch-size", "16", "--placement", "center", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n"] == 40 and out["clean_correct"] <= 40 and out["asr"] == out["success"] / out["clean_correct"]
    lo, hi = out["asr_interval"]
    assert lo <= out["asr"] <= hi and out["params"]["placement"] == "center"


@pytest.mark.parametrize("bug", [KeyError, TypeError, ValueError])  # the last two were once shown as bad input
def test_a_bug_keeps_its_traceback_and_bad_input_stays_one_line(monkeypatch, capsys, bug):
    from robust.attacks.controls import NoisePatch
    from robust.checks import InputError
    from robust.cli import _invoke

    def broken(self, *args, **kwargs):
        raise bug("a deliberate bug")

    monkeypatch.setattr(NoisePatch, "run", broken)
    args = ["attack", "run", "noise-patch", "--model", "zoo:digits-m/resnet", "--samples", "8", "--json"]
    with pytest.raises(bug, match="a deliberate bug"):  # out of the command: Python prints its traceback
        _invoke(args)
    assert "error:" not in capsys.readouterr().err
    assert _invoke([*args[:-3], "--samples", "0"]) == 2  # bad input: one line, code 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "samples" in err
    import robust

    assert robust.InputError is InputError and issubclass(InputError, ValueError)  # catching ValueError still works


def test_attack_run_universal_checkpoint(tmp_path):
    from robust.attacks import UniversalPatch
    from robust.data import load_dataset
    from robust.models import load_model

    path = tmp_path / "up.safetensors"
    UniversalPatch(seed=1).fit(load_model("zoo:digits-m/resnet", device="cpu"), load_dataset("digits-m", "train"),
                               steps=3, batch_size=8).save(path)
    res = _run("attack", "run", "universal-patch", "--model", "zoo:digits-m/resnet", "--samples", "20",
               "--checkpoint", str(path), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["targeted"] is True


@pytest.mark.parametrize("args, needle", [
    (("--param", "speed=3"), "does not take the parameter"),
    (("--param", "steps"), "expected KEY=VALUE"),
    (("--area", "2"), "area=2.0"),
    (("--samples", "0"), "--samples 0"),
    (("--checkpoint", "x.safetensors"), "--checkpoint is for trained attacks"),
])
def test_attack_run_bad_input(args, needle):
    res = _run("attack", "run", "lavan", "--model", "zoo:digits-m/resnet", *args)
    assert res.exit_code == 2 and needle in res.stderr and "Traceback" not in res.output


def test_attack_train_gan_patch_then_run_it(tmp_path):
    out = tmp_path / "gan.safetensors"
    args = ("attack", "train", "gan-patch", "--victim", "zoo:digits-m/resnet", "--out", str(out), "--epochs", "1",
            "--train-samples", "64", "--batch-size", "32", "--param", "width=4", "--param", "depth=1",
            "--split", "fit", "--json")
    res = _run(*args)
    assert res.exit_code == 0, res.output
    trained = json.loads(res.stdout)
    assert [h["epoch"] for h in trained["history"]] == [1] and out.exists()
    assert not out.with_suffix(".resume.pt").exists()  # removed once the artifact is written
    # trained on fit: scored on the 500 validation images, never on test
    assert trained["split"] == "fit" and "test" not in trained
    assert trained["val"]["zoo:digits-m/resnet"]["n"] == 500
    res = _run("attack", "run", "gan-patch", "--model", "zoo:digits-m/resnet", "--samples", "20", "--checkpoint",
               str(out), "--param", "refine=2", "--split", "val", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == 20 and json.loads(res.stdout)["split"] == "val"
    res = _run("attack", "run", "gan-patch", "--model", "zoo:digits-m/resnet", "--checkpoint", str(out),
               "--area", "0.1")
    assert res.exit_code == 2 and "fixed by the checkpoint" in res.stderr


def test_a_schedule_in_steps_continues_with_more_steps(tmp_path):
    out = tmp_path / "gan.safetensors"
    args = ("attack", "train", "gan-patch", "--victim", "zoo:digits-m/resnet", "--out", str(out), "--batch-size", "16",
            "--param", "width=4", "--param", "depth=1", "--train", "stream=true", "--train", "log_every=1", "--json")
    first = json.loads(_run(*args, "--steps", "2").stdout)
    assert [h["step"] for h in first["history"]] == [1, 2] and out.with_suffix(".resume.pt").exists()
    more = json.loads(_run(*args, "--steps", "3").stdout)  # the same run, one step further
    assert more["history"][:2] == first["history"] and [h["step"] for h in more["history"]] == [1, 2, 3]


def test_a_preset_without_an_artifact_says_the_command_that_trains_one(tmp_path, monkeypatch):
    import shlex

    (tmp_path / "tiny-gan.toml").write_text('attack = "gan-patch"\n[params]\narea = 0.12\ncontext = 3\nwidth = 4\n'
                                            'depth = 1\n[train]\nsteps = 2\nstream = true\nbatch_size = 16\n')
    monkeypatch.setenv("ROBUST_PRESETS", str(tmp_path))
    res = _run("attack", "run", "tiny-gan", "--model", "zoo:digits-m/resnet", "--samples", "8")
    assert res.exit_code == 2, res.output
    command = " ".join(res.stderr.split()).split("`")[1]  # the message's command, unwrapped
    assert command.startswith("robust attack train tiny-gan --victim zoo:digits-m/resnet")  # the preset's recipe
    seeded = _run("attack", "run", "tiny-gan", "--model", "zoo:digits-m/resnet", "--samples", "8", "--seed", "5")
    assert " ".join(seeded.stderr.split()).split("`")[1] == command.replace(" --out", " --seed 5 --out")  # its own
    out = tmp_path / "gan.safetensors"
    args = shlex.split(command.removesuffix(" --out FILE"))[1:]
    assert _run(*args, "--out", str(out)).exit_code == 0  # as the message says: then it runs with --checkpoint
    res = _run("attack", "run", "tiny-gan", "--model", "zoo:digits-m/resnet", "--samples", "8", "--checkpoint",
               str(out), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["params"]["context"] == 3, res.output
    # the preset's own name trains the same generator: its parameters and [train] recipe under the options given
    same = tmp_path / "same.safetensors"
    assert _run("attack", "train", "tiny-gan", "--victim", "zoo:digits-m/resnet", "--out", str(same)).exit_code == 0
    assert same.read_bytes() == out.read_bytes()
    assert json.loads(same.with_suffix(".safetensors.json").read_text())["training"]["steps"] == 2


@pytest.mark.parametrize("args, needle", [
    (("lavan", "--victim", "zoo:digits-m/resnet", "--out", "x.safetensors"), "attack 'lavan' is not trained"),
    (("gan-patch", "--victim", "zoo:digits-m/resnet"), "exactly one of --out PATH and --publish"),
    (("gan-patch", "--victim", "zoo:digits-m/resnet", "--out", "x.pt"), "expected a .safetensors path"),
    (("gan-patch", "--victim", "zoo:digits-m/resnet", "--out", "x.safetensors", "--train", "rounds=3"),
     "gan-patch does not take --rounds"),
    (("gan-patch", "--victim", "timm:resnet18", "--publish"), "is not a zoo model; expected zoo:DATASET/MODEL"),
    (("gan-patch", "--victim", "zoo:digits-m/resnet", "--out", "x.safetensors", "--variant", "critic2"),
     "--variant 'critic2' without --publish"),
    (("gan-patch", "--victim", "zoo:digits-m/resnet", "--publish", "--variant", "Critic/2"),
     "variant 'Critic/2' is not valid"),
    (("gan-patch-whole-12pct", "--victim", "zoo:digits-m/resnet", "--publish"),
     "--publish with the preset 'gan-patch-whole-12pct'"),
    (("lavan-12pct", "--victim", "zoo:digits-m/resnet", "--out", "x.safetensors"),
     "attack 'lavan-12pct' is not trained"),
])
def test_attack_train_bad_input(args, needle):
    res = _run("attack", "train", *args)
    assert res.exit_code == 2 and needle in res.stderr and "Traceback" not in res.output


def test_attack_run_takes_a_preset_and_records_how_to_rerun_it():
    from robust.attacks.artifacts import list_artifacts

    res = _run("attack", "run", "gan-patch-12pct", "--model", "zoo:digits-m/resnet", "--samples", "20", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    shipped = list_artifacts()["digits-m/resnet/gan-patch-12pct"]
    assert (out["preset"], out["method"], out["params"]["area"], out["params"]["placement"]) == (
        "gan-patch-12pct", "gan-patch", 0.12, "gradcam")
    assert out["artifact"] == {"checkpoint": "zoo:digits-m/resnet/gan-patch-12pct", "sha256": shipped["sha256"],
                               "config_sha256": shipped["config_sha256"]}
    assert out["versions"]["torch"] and out["samples"] == 20 and out["n"] == 20
    res = _run("attack", "run", "gan-patch-12pct", "--model", "zoo:digits-m/convmixer", "--samples", "20")
    assert res.exit_code == 2 and "has no shipped or cached artifact for zoo:digits-m/convmixer" in res.stderr
    said = " ".join(res.stderr.split())
    assert "`robust attack train gan-patch-12pct --victim zoo:digits-m/convmixer --data digits-m --out FILE`" in said
    res = _run("attack", "run", "gan-patch-12pct", "--model", "zoo:digits-m/resnet", "--area", "0.08")
    said = " ".join(res.stderr.split())  # the preset changed: every option spelled out
    assert res.exit_code == 2 and "`robust attack train gan-patch --victim zoo:digits-m/resnet --data digits-m " \
        "--area 0.08 --placement gradcam" in said
    res = _run("attack", "run", "patch-drop", "--model", "zoo:digits-m/resnet")
    assert res.exit_code == 2 and "is an evaluation preset" in res.stderr


def test_attack_run_trained_attack_needs_a_checkpoint():
    res = _run("attack", "run", "gan-patch", "--model", "zoo:digits-m/resnet")
    assert res.exit_code == 2 and "needs --checkpoint" in res.stderr
    res = _run("attack", "run", "gan-patch", "--model", "zoo:digits-m/resnet", "--checkpoint", "zoo:digits-m/nope")
    assert res.exit_code == 2 and "not a shipped artifact" in res.stderr


def test_occlusion_run_prints_a_curve_and_writes_a_plot(tmp_path):
    plot = tmp_path / "curve.png"
    res = _run("occlusion", "run", "patch-mixing", "--model", "zoo:digits-m/resnet", "--samples", "40", "--seeds",
               "2", "--param", "ratios=[0.0,0.5]", "--plot", str(plot), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["x"] == [0.0, 0.5] and out["n"] == 40 and out["mean"][0] > out["mean"][1]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = _run("occlusion", "run", "patch-drop", "--model", "zoo:digits-m/resnet", "--samples", "20", "--seeds", "1",
               "--grid", "4", "--plot", str(plot))
    assert res.exit_code == 0 and "normalised area" in res.stdout


@pytest.mark.parametrize("args, needle", [
    (("occlude",), "evaluation 'occlude' is unknown"),
    (("patch-drop", "--grid", "7"), "grid=7 does not divide"),
    (("patch-drop", "--param", "fill=3"), "fill=3"),
    (("patch-drop", "--plot", "x.jpg"), "expected a .png path"),
])
def test_occlusion_run_bad_input(args, needle):
    res = _run("occlusion", "run", *args[:1], "--model", "zoo:digits-m/resnet", "--samples", "10", *args[1:])
    assert res.exit_code == 2 and needle in res.stderr and "Traceback" not in res.output


def test_leaderboard_run_then_render(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text('dataset = "digits-m"\nsamples = 20\nmodels = ["zoo:digits-m/resnet"]\n'
                    'attacks = ["noise-patch-8pct"]\n')
    res = _run("leaderboard", "run", str(spec))  # stderr is not a terminal here: one line per finished cell
    assert res.exit_code == 0, res.output
    assert re.search(r"^\[1/1, \d+ s\] zoo:digits-m/resnet / noise-patch-8pct / seed 0: TCS \d+\.\d %, "
                     r"\d+\.\d s$", res.stderr, re.M), res.stderr
    assert (tmp_path / "tiny" / "index.html").is_file()
    again = json.loads(_run("leaderboard", "run", str(spec), "--json", "--no-render").stdout)
    assert (again["cells"], again["ran"], again["skipped"]) == (1, 0, 1)
    assert again["out"] == str(tmp_path / "tiny")
    res = _run("leaderboard", "render", str(spec), "--format", "md", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["md"].endswith("README.md")


def test_interrupted_leaderboard_run_says_what_was_kept(tmp_path, monkeypatch):
    import robust.runner

    spec = tmp_path / "tiny.toml"
    spec.write_text('dataset = "digits-m"\nsamples = 20\nmodels = ["zoo:digits-m/resnet"]\n'
                    'attacks = ["noise-patch-8pct"]\n')
    assert _run("leaderboard", "run", str(spec), "--no-render").exit_code == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(robust.runner, "run_board", interrupted)
    res = _run("leaderboard", "run", str(spec))
    assert res.exit_code == 130 and "interrupted: 1 finished cells of this board are kept in" in res.stderr
    assert "run the same command again to resume" in res.stderr


def test_version_and_presets_list():
    import robust

    res = _run("--version")
    assert res.exit_code == 0 and res.stdout.strip() == f"robust-suite {robust.__version__}"
    res = _run("presets", "list", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["gan-patch-12pct"]["kind"] == "attack" and rows["gan-patch-12pct"]["method"] == "gan-patch"
    assert rows["selectivity"]["kind"] == "evaluation" and rows["pgd-linf-8"]["description"]
    res = _run("presets", "list", "--presets", "/nonexistent")
    assert res.exit_code == 2 and "--presets '/nonexistent' is not a folder" in res.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["leaderboard", "run", "no-such-spec.toml"], "is not a file"),
    (["leaderboard", "run", "leaderboards/demo.toml", "--executor", "ray://127.0.0.1:1"], "is unreachable"),
    (["leaderboard", "run", "leaderboards/demo.toml", "--executor", "slurm"], "executor='slurm' is not valid"),
    (["leaderboard", "run", "leaderboards/demo.toml", "--workers", "0"], "workers=0 is not valid"),
    (["leaderboard", "render", "leaderboards/demo.toml", "--out", "/nonexistent/board"], "there are no results"),
])
def test_leaderboard_bad_input(args, needle, tmp_path):
    if "--executor" in args or "--workers" in args:
        args = [*args, "--out", str(tmp_path / "board")]
    res = _run(*args)
    assert res.exit_code == 2 and needle in res.output and len(res.output.strip().splitlines()) == 1, res.output
