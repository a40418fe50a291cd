"""imagenet-val: every layout labels by synset -> ImageNet-1k index (tiny JPEGs written by the tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robust.data import Preprocess, load_dataset
from robust.data.imagenet_val import robustbench_ids
from robust.model_data import load_for

# Imagenette's first three synsets and their ImageNet-1k indices (not 0, 1, 2).
SYNSETS = {"n01440764": 0, "n02102040": 217, "n02979186": 482}


def _jpeg(path: Path, seed: int, size: tuple[int, int] = (40, 30)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUST_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def synset_folders(tmp_path) -> Path:
    root = tmp_path / "imagenette-val"
    for k, synset in enumerate(SYNSETS):
        for j in range(2):
            _jpeg(root / synset / f"ILSVRC2012_val_{10 * k + j + 1:08d}.JPEG", 10 * k + j)
    return root


@pytest.fixture
def flat(tmp_path) -> Path:
    root = tmp_path / "flat"
    for i in range(1, 4):
        _jpeg(root / f"ILSVRC2012_val_{i:08d}.JPEG", i)
    return root


def test_a_subset_of_synset_folders_keeps_the_imagenet_indices(synset_folders):
    ds = load_dataset(f"imagenet-val:{synset_folders}", preprocess=Preprocess(16, 20, "bilinear"))
    assert sorted(set(ds.labels.tolist())) == [0, 217, 482]  # an ImageFolder would say 0, 1, 2
    assert ds.labels.tolist() == [0, 0, 217, 217, 482, 482]  # sorted by file name
    assert ds.num_classes == 1000 and ds.class_names[217].startswith("English springer")
    assert ds.image_size == (3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.meta["preprocess"] == {"size": 16, "resize": 20, "interpolation": "bilinear"}


def test_a_flat_folder_with_kaggles_solution_csv(flat, tmp_path):
    csv = tmp_path / "LOC_val_solution.csv"
    csv.write_text("ImageId,PredictionString\nILSVRC2012_val_00000002,n02102040 1 2 3 4 n02102040 5 6 7 8\n"
                   "ILSVRC2012_val_00000001,n01440764 1 2 3 4\nILSVRC2012_val_00000003,n02979186 0 0 9 9\n"
                   "ILSVRC2012_val_00000099,n02979186 0 0 9 9\n")  # images not in the folder are fine
    ds = load_dataset(f"imagenet-val:{flat}?labels={csv}", image_size=16)
    assert ds.labels.tolist() == [0, 217, 482]


def _meta_mat(path: Path, order: list[str]) -> None:
    """A devkit-style meta.mat: the 1,000 leaf synsets under ids 1..1000 in ``order``, plus a non-leaf entry."""
    from scipy.io import savemat

    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O"),
             ("wordnet_height", "O"), ("num_train_images", "O")]
    rows = [(i + 1, w, "", "", 0, 0, 0) for i, w in enumerate(order)] + [(1001, "n00001740", "entity", "", 3, 1, 0)]
    savemat(str(path), {"synsets": np.array(rows, dtype=dtype)})


def test_a_flat_folder_with_the_devkits_ground_truth_and_meta(flat, tmp_path):
    from robust.data.imagenet import synset_index

    order = list(reversed(list(synset_index())))  # the devkit's ids are not the sorted order: reversed here
    _meta_mat(tmp_path / "meta.mat", order)
    ids = {s: order.index(s) + 1 for s in SYNSETS}
    (tmp_path / "gt.txt").write_text("".join(f"{ids[s]}\n" for s in ["n02979186", "n01440764", "n02102040"]))
    ds = load_dataset(f"imagenet-val:{flat}?labels={tmp_path / 'gt.txt'}&meta={tmp_path / 'meta.mat'}",
                      image_size=16)
    assert ds.labels.tolist() == [482, 0, 217]


def test_wrong_ground_truth_files_fail_naming_the_file_and_what_is_wrong(flat, tmp_path):
    csv = tmp_path / "LOC_val_solution.csv"
    csv.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3 4\n")
    with pytest.raises(ValueError, match=r"has no label for 'ILSVRC2012_val_00000002\.JPEG'"):
        load_dataset(f"imagenet-val:{flat}?labels={csv}")
    csv.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n99999999 1 2 3 4\n")
    with pytest.raises(ValueError, match=r"line 2: 'n99999999' is not an ImageNet-1k synset"):
        load_dataset(f"imagenet-val:{flat}?labels={csv}")
    (tmp_path / "gt.txt").write_text("1\n2\n3\n")
    with pytest.raises(ValueError, match="pass meta=PATH"):
        load_dataset(f"imagenet-val:{flat}?labels={tmp_path / 'gt.txt'}")
    (tmp_path / "meta.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match=r"is not the devkit's meta\.mat"):
        load_dataset(f"imagenet-val:{flat}?labels={tmp_path / 'gt.txt'}&meta={tmp_path / 'meta.mat'}")
    with pytest.raises(ValueError, match="has no synset folders; expected a folder per synset"):
        load_dataset(f"imagenet-val:{flat}")


def test_subsets_keep_their_order_and_train_is_the_rest(synset_folders, tmp_path):
    listing = tmp_path / "ids.txt"
    listing.write_text("n02979186/ILSVRC2012_val_00000021.JPEG\nILSVRC2012_val_00000001.JPEG\n")
    name = f"imagenet-val:{synset_folders}?subset={listing}"
    assert load_dataset(name, image_size=16).labels.tolist() == [482, 0]
    assert load_dataset(name, "train", image_size=16).labels.tolist() == [0, 217, 217, 482]
    assert load_dataset(name + "&limit=1", image_size=16).labels.tolist() == [482]
    with pytest.raises(ValueError, match="split='train' needs subset="):
        load_dataset(f"imagenet-val:{synset_folders}", "train")
    for split in ("tset", "val", "Test", "", "fit"):  # never the other images under the name asked for
        for source in (name, f"imagenet-val:{synset_folders}"):
            with pytest.raises(ValueError, match=f"split={split!r} is not valid; expected one of"):
                load_dataset(source, split, image_size=16)


def test_the_robustbench_subset_is_its_5000_ids_and_a_partial_folder_says_what_is_missing(synset_folders):
    ids = robustbench_ids()
    assert len(ids) == len(set(ids)) == 5000 and ids[0] == "ILSVRC2012_val_00015253.JPEG"
    assert "ILSVRC2012_val_00000011.JPEG" in ids  # one of the fixture's six images
    with pytest.raises(ValueError, match=r"4999 of the 5000 images of subset='robustbench-5000' are not in the "
                                         r"folder \(e.g. 'ILSVRC2012_val_00015253.JPEG'\)"):
        load_dataset(f"imagenet-val:{synset_folders}?subset=robustbench-5000")


def test_bad_folders_images_and_options_fail_in_one_line(synset_folders, tmp_path):
    (synset_folders / "n02979186" / "ILSVRC2012_val_00000099.JPEG").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match=r"image '.*ILSVRC2012_val_00000099.JPEG' does not decode"):
        load_dataset(f"imagenet-val:{synset_folders}", image_size=16)
    (synset_folders / "n02979186" / "ILSVRC2012_val_00000099.JPEG").unlink()
    (synset_folders / "cats").mkdir()
    with pytest.raises(ValueError, match="folder 'cats' is not a synset"):
        load_dataset(f"imagenet-val:{synset_folders}")
    with pytest.raises(ValueError, match="option 'subsett' is not valid"):
        load_dataset(f"imagenet-val:{synset_folders}?subsett=x")
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(f"imagenet-val:{tmp_path / 'nowhere'}")
    (tmp_path / "n01440764").mkdir()
    _jpeg(tmp_path / "n01440764" / "a.JPEG", 0)
    with pytest.raises(ValueError, match="is not valid for 'digits-m'"):
        load_dataset("digits-m", preprocess=Preprocess(16, 20))


def test_images_are_decoded_once_per_preprocessing(synset_folders, monkeypatch):
    from robust.data import imagenet_val

    first = load_dataset(f"imagenet-val:{synset_folders}", image_size=16)
    monkeypatch.setattr(imagenet_val, "decode", lambda *a: pytest.fail("decoded again"))
    again = load_dataset(f"imagenet-val:{synset_folders}", image_size=16)
    assert torch.equal(first.images, again.images)
    monkeypatch.undo()
    other = load_dataset(f"imagenet-val:{synset_folders}", preprocess=Preprocess(16, 16, "bilinear"))
    assert not torch.equal(first.images, other.images)


def test_the_data_follows_the_models_own_preprocessing(synset_folders):
    from robust.models import load_model

    vit = load_model("timm:vit_tiny_patch16_224?pretrained=false", device="cpu")
    assert vit.preprocess == Preprocess(224, 248, "bicubic")  # timm's crop_pct 0.9
    ds = load_for(vit, f"imagenet-val:{synset_folders}")
    assert ds.image_size == (3, 224, 224) and ds.meta["preprocess"]["resize"] == 248
    assert load_for(vit, "digits-m").image_size == (3, 32, 32)  # a dataset of one size ignores it


def test_preprocess_matches_torchvisions_eval_transform():
    from PIL import Image
    from torchvision import transforms as T

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (61, 83, 3), dtype=np.uint8))
    ours = Preprocess(32, 36, "bilinear")(image)
    theirs = T.Compose([T.Resize(36, T.InterpolationMode.BILINEAR), T.CenterCrop(32), T.PILToTensor()])(image)
    assert torch.equal(ours, theirs)
    with pytest.raises(ValueError, match="interpolation='lanczos' is not valid"):
        Preprocess(32, 36, "lanczos")
    with pytest.raises(ValueError, match=r"resize=.* expected an integer >= size"):
        Preprocess(32, 16)


def test_a_board_on_imagenet_val_gives_each_model_the_images_its_own_preprocessing_makes(synset_folders, tmp_path):
    from robust.runner import plan, run_board
    from robust.runner.spec import parse_spec

    spec = parse_spec({"dataset": f"imagenet-val:{synset_folders}", "samples": 2, "batch_size": 2, "seeds": [0],
                       "models": ["zoo:imagenet/efficientnet-lite0", "zoo:imagenet/efficientnet-lite1"],
                       "attacks": ["noise-patch-8pct"], "evaluations": []})
    cells, failed = plan(spec)  # on one size of images, Lite1 (240 px) would fail here: "takes 3 x 240 x 240"
    assert not failed and len(cells) == 2
    report = run_board(spec, tmp_path / "out")
    assert (report.ran, report.failed) == (2, 0)


def test_the_imagenet_board_stops_in_one_line_without_its_data_and_marks_models_without_weights(
        synset_folders, tmp_path, monkeypatch, capsys):
    import tomllib

    from robust.cli import main
    from robust.runner import plan
    from robust.runner.spec import parse_spec

    board = Path(__file__).parents[1] / "leaderboards" / "imagenet.toml"
    monkeypatch.setenv("HOME", str(synset_folders.parent))  # ~/data/imagenet/val does not exist there
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "run", str(board), "--out", str(tmp_path / "board")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2 and len(err) == 1 and "val' does not exist" in err[0], err
    assert not (tmp_path / "board").exists()  # no store made for data that is not there
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no download retries: fail at once
    table = tomllib.loads(board.read_text())
    spec = parse_spec({**table, "dataset": f"imagenet-val:{synset_folders}", "samples": 2,
                       "models": table["models"][:1], "attacks": ["lavan-12pct"], "evaluations": []})
    cells, failed = plan(spec)
    assert not cells and "pretrained weights could not be loaded" in failed[0]["error"]


@pytest.mark.slow  # builds imagenet-crops twice and runs efficientnet-lite0 at 224 px: 15-18 s on 2 cores
def test_imagenet_crops_are_split_by_photo_seeded_and_labelled_by_the_models_decision(tmp_path):
    from robust.attacks import evaluate, make_attack
    from robust.data import photos
    from robust.models import load_model

    assert not set(photos.CROP_PHOTOS["test"]) & set(photos.CROP_PHOTOS["train"])
    small = Preprocess(32, 36, "bilinear")
    a, b = load_dataset("imagenet-crops", preprocess=small), load_dataset("imagenet-crops", preprocess=small)
    assert torch.equal(a.images, b.images) and a.image_size == (3, 32, 32)  # seeded
    assert len(a) == len(photos.CROP_PHOTOS["test"]) * photos.CROPS_PER_PHOTO["test"]
    assert set(a.meta["photo"][:24]) == set(range(6))  # shuffled: the first crops sample every photo
    assert len(load_dataset("imagenet-crops", "train", preprocess=small)) == 12 * 40
    lite = load_model("zoo:imagenet/efficientnet-lite0", device="cpu")
    noise = make_attack("noise-patch", area=0.12, seed=0)
    with pytest.raises(ValueError, match=r"labelled by each model's own decision \(here: no model's\); expected it "
                                         r"loaded for model 'zoo:imagenet/efficientnet-lite0': "
                                         r"robust\.model_data\.load_for"):
        evaluate(noise, lite, load_dataset("imagenet-crops"), samples=4)
    mine = load_for(lite, "imagenet-crops")
    with torch.no_grad():
        assert torch.equal(mine.labels[:8], lite(mine.batch(slice(0, 8))[0]).argmax(1))
    assert evaluate(noise, lite, mine, samples=8).clean_correct == 8  # its own decisions: correct by construction


@pytest.mark.slow  # a board on efficientnet-lite0 at 224 px: 11-16 s on 2 cores
def test_a_board_on_decision_labels_says_so_in_every_format(tmp_path):
    import json

    from robust.runner import run_board
    from robust.runner.spec import parse_spec

    spec = parse_spec({"title": "crops", "dataset": "imagenet-crops", "samples": 4, "batch_size": 4, "seeds": [0],
                       "models": ["zoo:imagenet/efficientnet-lite0"], "attacks": ["noise-patch-12pct"],
                       "evaluations": []})
    run_board(spec, tmp_path / "board")
    from robust.leaderboard import render

    render(spec, tmp_path / "board")
    (row,) = json.loads((tmp_path / "board" / "results.json").read_text())["rows"]
    assert row["labels"] == "decision" and row["clean_acc"] == 1.0
    for name in ("README.md", "index.html"):
        assert "decision labels in every row" in (tmp_path / "board" / name).read_text()
    assert "labels" in (tmp_path / "board" / "results.csv").read_text().splitlines()[0].split(",")


def test_the_synset_index_is_robustbenchs_map():
    import json
    from importlib.util import find_spec

    from robust.data.imagenet import synset_index

    helper = Path(next(iter(find_spec("robustbench").submodule_search_locations))) / "helper_files"
    assert synset_index() == json.loads((helper / "imagenet_class_to_id_map.json").read_text())


@pytest.mark.slow  # 15-21 s: the robust command labels all of imagenet-crops' test crops through Lite0 at 224 px
def test_attack_run_says_when_its_labels_are_the_models_decisions(capsys):
    import json

    from robust.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["attack", "run", "noise-patch-12pct", "--model", "zoo:imagenet/efficientnet-lite0", "--data",
              "imagenet-crops", "--samples", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 0
    assert out["labels"] == "decision" and out["clean_accuracy"] == 1.0


def test_hostile_ground_truth_files_fail_in_one_line(flat, tmp_path):
    """A huge CSV field, non-UTF-8 bytes, a NUL, a meta.mat whose synsets are not ImageNet's: one line each."""
    cases = {"huge.csv": ("ImageId,PredictionString\nILSVRC2012_val_00000001,\"" + "n" * 200_000 + "\"\n").encode(),
             "bytes.csv": b"ImageId,PredictionString\nILSVRC2012_val_00000001,\xff\xfe n01440764\n",
             "nul.csv": b"ImageId,PredictionString\nILSVRC2012_val_00000001,n01440\x00764 1\n",
             "bytes.txt": b"1\n\xff\n"}
    needles = {"huge.csv": r"line 2 is not valid CSV \(field larger than field limit",
               "bytes.csv": r"is not UTF-8 text \(byte \d+\)", "nul.csv": "line 2",
               "bytes.txt": r"is not UTF-8 text"}
    from robust.data.imagenet import synset_index

    _meta_mat(tmp_path / "meta.mat", list(synset_index()))
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        meta = f"&meta={tmp_path / 'meta.mat'}" if name.endswith(".txt") else ""
        with pytest.raises(ValueError, match=needles[name]) as err:
            load_dataset(f"imagenet-val:{flat}?labels={tmp_path / name}{meta}", image_size=16)
        assert str(err.value).startswith(f"labels file {str(tmp_path / name)!r}") and "\n" not in str(err.value)
    foreign = [f"n9{i:07d}" for i in range(1000)]  # 1,000 leaf classes, none of them ImageNet's
    _meta_mat(tmp_path / "meta.mat", foreign)
    (tmp_path / "gt.txt").write_text("1\n2\n3\n")
    with pytest.raises(ValueError, match=r"names 1000 synsets that are not ImageNet-1k's \(e\.g\. 'n90000000'\)"):
        load_dataset(f"imagenet-val:{flat}?labels={tmp_path / 'gt.txt'}&meta={tmp_path / 'meta.mat'}")
    _meta_mat(tmp_path / "meta.mat", list(synset_index()))
    assert load_dataset(f"imagenet-val:{flat}?labels={tmp_path / 'gt.txt'}&meta={tmp_path / 'meta.mat'}",
                        image_size=16).labels.tolist() == [0, 1, 2]


def test_any_ground_truth_bytes_load_or_fail_in_one_line(flat, tmp_path_factory):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    folder = tmp_path_factory.mktemp("gt")
    lines = st.lists(st.sampled_from(["ImageId,PredictionString", "ILSVRC2012_val_00000001,n01440764 1 2 3 4",
                                      "ILSVRC2012_val_00000002,n02102040", "ILSVRC2012_val_00000003,n02979186 0",
                                      "", ",", "\"", "x,\x00", "ILSVRC2012_val_00000003,n99999999"]), max_size=6)
    contents = st.binary(max_size=200) | lines.map(lambda ls: "\n".join(ls).encode())

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(contents, st.sampled_from(["gt.csv", "gt.txt"]))
    def check(data, name):
        path = folder / name
        path.write_bytes(data)
        try:
            ds = load_dataset(f"imagenet-val:{flat}?labels={path}&meta={folder / 'none.mat'}", image_size=16)
        except ValueError as e:
            assert "\n" not in str(e) and str(folder) in str(e)
        else:
            assert ds.labels.tolist() == [0, 217, 482]

    check()
