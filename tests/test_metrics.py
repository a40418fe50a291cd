import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robust.metrics import Counts, clean_accuracy, count, wilson_interval


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
    with pytest.raises(ValueError, match="has 10 classes and dataset 'imagenet-photos' has 1000"):
        clean_accuracy(model, load_dataset("imagenet-photos"))
    with pytest.raises(TypeError, match="ImageSet"):
        clean_accuracy(model, [(torch.rand(3, 32, 32), 0)])


def _logits(pred: list[int], k: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), k).float()


def test_counts_follow_the_protocol_definitions():
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    clean = _logits([0, 1, 2, 3, 1, 1])  # sample 4 is misclassified clean: C = {0, 1, 2, 3, 5}
    adv = _logits([2, 3, 2, 0, 2, 1])
    target = torch.tensor([2, 2, 1, 0, 2, 0])
    c = count(clean, adv, y, target)
    assert (c.n, c.clean_correct, c.success, c.target_hit, c.success_all, c.target_hit_all) == (6, 5, 3, 2, 4, 3)
    assert (c.asr, c.tcs, c.clean_accuracy) == (3 / 5, 2 / 5, 5 / 6)
    assert c.robust_accuracy == 2 / 6 and c.tcs <= c.asr
    assert c.interval("tcs") == wilson_interval(2, 5)
    untargeted = count(clean, adv, y)
    assert untargeted.tcs is None and untargeted.asr == 3 / 5 and untargeted.interval("tcs") is None


def test_a_target_equal_to_the_label_is_skipped_by_tcs_never_a_success():
    y = torch.tensor([0, 1])
    c = count(_logits([0, 1]), _logits([0, 1]), y, target=torch.tensor([0, 2]))
    assert (c.skipped, c.skipped_correct, c.n, c.clean_correct, c.target_hit, c.success) == (1, 1, 2, 2, 0, 0)
    assert c.fraction("tcs") == (0, 1) and c.fraction("asr") == (0, 2)


def test_counts_merge_like_one_batch():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (500,), generator=g)
    clean, adv = torch.randn(500, 10, generator=g), torch.randn(500, 10, generator=g)
    target = (y + torch.randint(1, 10, (500,), generator=g)) % 10
    whole = count(clean, adv, y, target)
    parts = [count(clean[i:i + 128], adv[i:i + 128], y[i:i + 128], target[i:i + 128]) for i in range(0, 500, 128)]
    assert sum(parts, Counts()) == whole
    record = whole.to_dict()
    assert record["tcs_interval"] == wilson_interval(whole.target_hit, whole.clean_correct)
    assert record["target_hit"] == whole.target_hit and record["tcs"] == whole.tcs
    with pytest.raises(ValueError, match="rate='accuracy'"):
        whole.interval("accuracy")


def test_count_bad_input():
    y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="adv has 3 samples"):
        count(_logits([0, 1]), _logits([0, 1, 2]), y)
    with pytest.raises(ValueError, match=r"target contains class 7; expected classes in \[0, 3\]"):
        count(_logits([0, 1]), _logits([0, 1]), y, torch.tensor([7, 0]))
    with pytest.raises(ValueError, match="num_classes=None"):
        count(torch.tensor([0, 1]), torch.tensor([0, 1]), y)
    with pytest.raises(ValueError, match="cannot merge"):
        count(_logits([0]), _logits([1]), y[:1]) + count(_logits([0]), _logits([1]), y[:1], torch.tensor([2]))


def test_per_class_counts_sum_to_the_total_and_match_a_loop():
    from robust.metrics import confusion, per_class

    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 5, (300,), generator=g)
    clean, adv = torch.randn(300, 5, generator=g), torch.randn(300, 5, generator=g)
    target = (y + torch.randint(0, 5, (300,), generator=g)) % 5  # some equal y: skipped
    rows = per_class(clean, adv, y, target)
    assert len(rows) == 5 and sum(rows, Counts()) == count(clean, adv, y, target)
    for c in range(5):
        sel = y == c
        assert rows[c] == count(clean[sel], adv[sel], y[sel], target[sel])
    cm = confusion(y, adv, 5)
    assert cm.shape == (5, 5) and cm.sum() == 300
    assert (cm.sum(1) == torch.bincount(y, minlength=5).numpy()).all()
    assert cm.trace() == int((adv.argmax(1) == y).sum())


def test_a_fixed_target_leaves_its_own_class_out_of_tcs_only():
    """The issue's case: 10 correct images, fixed target 3, every adversarial prediction 3. The image of class 3
    stays in n, in C and in ASR (it was not fooled); TCS is 9 / 9 and says it left one out."""
    y = torch.arange(10)
    target = torch.full((10,), 3)
    c = count(y, torch.full((10,), 3), y, target, num_classes=10)
    assert (c.n, c.clean_correct, c.success, c.skipped, c.skipped_correct) == (10, 10, 9, 1, 1)
    assert c.asr == 0.9 and c.tcs == 1.0 and c.fraction("tcs") == (9, 9) and c.fraction("tcs_all") == (9, 9)
    assert c.clean_accuracy == 1.0 and c.robust_accuracy == 0.1 and c.asr_all == 0.9
    wrong = count(torch.zeros(10, dtype=torch.long), torch.full((10,), 3), y, target, num_classes=10)
    assert (wrong.clean_correct, wrong.skipped_correct, wrong.fraction("tcs"), wrong.fraction("tcs_all")) == \
        (1, 0, (1, 1), (9, 9))
