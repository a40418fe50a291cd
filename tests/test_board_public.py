"""Issue 27, item 5: a board fit to publish. No absolute path of the user's in any file it writes, a Reproduce
command with the options and environment it needs, descriptions of derived tasks that state the parameters used,
no mention of a worst case the board does not have, and a user's model's parameter count on its card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robust import leaderboard
from robust.leaderboard.cards import environment
from robust.leaderboard.public import named_paths, redact, redactor, shown
from robust.runner import load_spec, run_board

RESNET = "zoo:digits-m/resnet"


def test_paths_inside_the_spec_folder_stay_relative_and_others_lose_their_folders(tmp_path):
    base = tmp_path / "boards"
    assert shown("weights/m.pt", base) == "weights/m.pt"
    assert shown(str(base / "weights" / "m.pt"), base) == "weights/m.pt"
    assert shown("/srv/ana/models/m.pt", base) == "…/m.pt"
    assert shown("../models/m.pt", base) == "…/m.pt" and shown("~/m.pt", base) == "…/m.pt"


def test_every_path_a_spec_names_is_found():
    from robust.runner.spec import ModelEntry, Spec

    spec = Spec("t", "imagenet-val:/data/imagenet?subset=10", 10, (0,), 10, "cpu", (
        ModelEntry("file:/srv/a.pt?arch=timm:resnet18&checkpoint=/x/ck.pt", "a"),
        ModelEntry("timm:resnet18?checkpoint=/y/c.pth", "b"),
        ModelEntry("robustbench:cifar10/Linf/Standard?model_dir=/z/models", "c")), ())
    assert sorted(named_paths(spec)) == ["/data/imagenet", "/srv/a.pt", "/x/ck.pt", "/y/c.pth", "/z/models"]
    mapping = redactor(spec)
    assert redact("file:/srv/a.pt?arch=timm:resnet18&checkpoint=/x/ck.pt", mapping) == \
        "file:…/a.pt?arch=timm:resnet18&checkpoint=…/ck.pt"
    assert redact(f"failed: {Path.home()}/.cache/robust/x", mapping) == "failed: ~/.cache/robust/x"


@pytest.fixture(scope="module")
def published(save_checkpoint, tmp_path_factory):
    """A board of a user's checkpoint kept outside the spec's folder, rendered into a folder of its own."""
    root = tmp_path_factory.mktemp("user")
    (root / "models_store").mkdir()
    weights = save_checkpoint(root / "models_store" / "my_net.safetensors")
    spec_dir = root / "boards"
    spec_dir.mkdir()
    spec_file = spec_dir / "mine.toml"
    spec_file.write_text(
        'dataset = "digits-m"\nsamples = 20\nbatch_size = 20\n'
        f'models = [{{ spec = "file:{weights}", name = "mine" }}]\n'
        'attacks = [{ preset = "pgd-linf-8", name = "pgd-short", params = { steps = 2, restarts = 1 } }]\n')
    spec = load_spec(spec_file)
    out = root / "published"
    run_board(spec, out)
    return root, spec, out, leaderboard.render(spec, out)


def test_no_file_of_a_board_shows_an_absolute_path(published):
    root, _, _, written = published
    for kind in ("md", "html", "json", "csv"):
        text = written[kind].read_text()
        text = json.dumps(json.loads(text), ensure_ascii=False) if kind == "json" else text
        assert str(root) not in text and str(root).replace("_", "\\_") not in text, kind
        assert "…/my" in text, kind  # the checkpoint by its file name
    readme = written["md"].read_text()
    assert "file:…/my\\_net.safetensors" in readme


def test_reproduce_names_the_out_folder_and_the_environment(published, monkeypatch):
    _, spec, _, written = published
    command = json.loads(written["json"].read_text())["reproduction"]["command"]
    # the board lies outside the working folder here: its paths are shown by name, never by where they are
    assert command == "robust leaderboard run …/mine.toml --out …/published"
    monkeypatch.setenv("ROBUST_PLUGINS", "my_plugin")
    assert environment(spec) == {"ROBUST_PLUGINS": "my_plugin"}


def test_a_derived_task_states_the_parameters_it_uses(published):
    readme = published[3]["md"].read_text()
    section = readme.split("## pgd-short")[1].split("\n## ")[0]
    assert "restarts=1, steps=2" in section and "(preset pgd-linf-8 with steps=2, restarts=1)" in section
    assert "50 steps" not in section  # the preset's own prose named the values the overrides replaced


def test_a_board_without_a_worst_case_does_not_mention_one_and_cards_count_parameters(published):
    readme = published[3]["md"].read_text()
    assert "first worst case" not in readme and "worst case" not in readme.split("## Clean against robust")[1][:300]
    cards = readme.split("## Models")[1].split("\n## ")[0]
    assert "| 0.32 M |" in cards  # counted from the model the cells ran, not only the zoo's manifest
