import pytest

from robust.io import sha256_file
from robust.metrics import clean_accuracy
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
def test_accuracy_matches_the_manifest(key, digits_test):
    model = load_model(f"zoo:{key}", device="cpu")
    res = clean_accuracy(model, digits_test)
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
