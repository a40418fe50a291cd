import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robust.metrics import clean_accuracy, wilson_interval


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_the_rate_and_stays_in_unit_range(kn):
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_interval_known_value_and_narrowing():
    lo, hi = wilson_interval(965, 1000)
    assert lo == pytest.approx(0.95173, abs=1e-4) and hi == pytest.approx(0.97475, abs=1e-4)
    assert wilson_interval(97, 100)[1] - wilson_interval(97, 100)[0] > hi - lo
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 3)[0] == 0.0 and wilson_interval(3, 3)[1] == 1.0
    with pytest.raises(ValueError, match="successes=5, n=3"):
        wilson_interval(5, 3)


def test_clean_accuracy_counts_and_leaves_mode(resnet, digits_test):
    resnet.train()
    try:
        res = clean_accuracy(resnet, digits_test, batch_size=128, limit=300)
        assert resnet.training  # restored
    finally:
        resnet.eval()
    with torch.no_grad():
        x, y = digits_test.batch(slice(0, 300))
        expected = int((resnet(x).argmax(1) == y).sum())
    assert res["n"] == 300 and res["correct"] == expected


def test_clean_accuracy_rejects_mismatched_classes(digits_test):
    from robust.data import load_dataset
    from robust.models import load_model

    model = load_model("zoo:digits-m/resnet", device="cpu")
    with pytest.raises(ValueError, match="1000 classes but model"):
        clean_accuracy(model, load_dataset("imagenet-photos"))
    with pytest.raises(TypeError, match="ImageSet"):
        clean_accuracy(model, [(torch.rand(3, 32, 32), 0)])
