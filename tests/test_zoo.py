import pytest

from robust.io import sha256_file
from robust.models import load_model, zoo
from robust.models.zoo.manifest import ZOO_DIR

TRAINED = {k: v for k, v in zoo.list_models().items() if k.startswith("digits-m/")}


def test_zoo_has_the_five_families():
    assert {"digits-m/resnet", "digits-m/vit", "digits-m/mixer", "digits-m/poolformer",
            "digits-m/convmixer"} <= set(TRAINED)


@pytest.mark.parametrize("key", sorted(TRAINED))
def test_manifest_entry_is_complete_and_matches_the_file(key):
    entry = TRAINED[key]
    assert sha256_file(ZOO_DIR / entry["file"]) == entry["sha256"]
    assert entry["command"].startswith("robust zoo train ") and entry["dataset"] == "digits-m"
    from robust.data import digits_m

    assert entry["dataset_hash"] == digits_m.content_hash()
    assert sum((ZOO_DIR / e["file"]).stat().st_size for e in TRAINED.values()) < 25 * 2**20


@pytest.mark.parametrize("key", sorted(TRAINED))
def test_accuracy_matches_the_manifest(key, zoo_accuracy):
    model, res = zoo_accuracy(key)
    assert res["n"] == TRAINED[key]["test_n"] == 1000
    assert abs(res["accuracy"] - TRAINED[key]["test_accuracy"]) <= 0.01
    assert model.family == TRAINED[key]["family"]


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    import shutil

    from robust.models.zoo import manifest

    entry = TRAINED["digits-m/resnet"]
    shutil.copy(ZOO_DIR / entry["file"], tmp_path / entry["file"])
    shutil.copy(ZOO_DIR / "manifest.json", tmp_path / "manifest.json")
    with open(tmp_path / entry["file"], "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    monkeypatch.setattr(manifest, "ZOO_DIR", tmp_path)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    monkeypatch.setattr(zoo, "read_manifest", lambda: manifest.read_manifest(tmp_path))
    with pytest.raises(ValueError, match="sha256"):
        load_model("zoo:digits-m/resnet")


@pytest.mark.slow  # trains recipes on fit and scores them on val: 11-13 s on 2 cores
def test_a_recipe_is_tried_on_fit_and_scored_on_val_never_on_test(tmp_path, monkeypatch):
    from robust import zoo_training
    from robust.data import digits_m

    loaded = []
    real = digits_m.load

    def small(split):  # the real split, cut to 64 images so that one epoch takes a second
        loaded.append(split)
        return real(split).subset(slice(0, 64))

    monkeypatch.setattr(zoo_training.digits_m, "load", small)
    entry = zoo_training.train("resnet", epochs=1, lr=1e-3, split="fit", out_dir=tmp_path, progress=False)
    assert loaded == ["fit", "val"]
    assert entry["split"] == "fit" and entry["val_n"] == 64 and "test_accuracy" not in entry
    assert entry["lr"] == 1e-3 and entry["command"].endswith("--lr 0.001 --split fit")
    assert entry["stream"] is False
    fresh = zoo_training.train("resnet", epochs=1, lr=1e-3, split="fit", stream=True, out_dir=tmp_path / "s",
                               progress=False)  # the same steps on fresh composites of the split's digits
    assert fresh["stream"] is True and fresh["command"].endswith("--lr 0.001 --stream --split fit")
    assert fresh["sha256"] != entry["sha256"]
    with pytest.raises(ValueError, match="split='fit' and publish=True"):
        zoo_training.train("resnet", epochs=1, split="fit", publish=True)
    with pytest.raises(ValueError, match="split='val' is not valid for training"):
        zoo_training.train("resnet", epochs=1, split="val", out_dir=tmp_path)
    with pytest.raises(ValueError, match="lr=2 is not valid"):
        zoo_training.train("resnet", lr=2, out_dir=tmp_path)
