"""Realism of pasted patches: per-image measures, the detector's AUC, batching and pooling."""

from __future__ import annotations

import math

import pytest
import torch

from robust.placement import context_boxes, fixed_boxes, paste
from robust.realism import (
    Realism,
    colour_histograms,
    context_squares,
    detector_auc,
    pool,
    roc_auc,
    total_variation,
    train_detector,
    window_measures,
)


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_total_variation_and_window_measures_of_known_patches():
    g = torch.Generator().manual_seed(0)
    x = _images()
    boxes = fixed_boxes(4, (32, 32), 9)
    smooth = torch.full((4, 3, 9, 9), 0.5)
    noisy = torch.rand(4, 3, 9, 9, generator=g)
    assert torch.equal(total_variation(smooth), torch.zeros(4))
    assert bool((total_variation(noisy) > 0.3).all())
    same = window_measures(x, x, boxes)
    assert torch.allclose(same["ssim"], torch.ones(4), atol=1e-4) and torch.allclose(same["psnr"], torch.full((4,),
                                                                                                               100.0))
    pasted = window_measures(x, paste(x, noisy, boxes), boxes)
    assert bool((pasted["ssim"] < 0.5).all()) and bool((pasted["psnr"] < 20).all())
    with pytest.raises(ValueError, match="expected N x C x p x p"):
        total_variation(torch.rand(3, 9, 9))
    with pytest.raises(ValueError, match="x_adv has shape"):
        window_measures(x, x[:2], boxes)


def test_histogram_distance_is_zero_for_matching_colours_and_high_for_a_foreign_patch():
    grey = torch.full((2, 3, 32, 32), 0.5)
    boxes = torch.tensor([[0, 0, 9, 9], [20, 11, 9, 9]])  # a corner box: its context is shifted into the image
    assert torch.equal(window_measures(grey, grey, boxes)["hist"], torch.zeros(2))
    red = paste(grey, torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 9, 9), boxes)
    assert torch.allclose(window_measures(grey, red, boxes)["hist"], torch.ones(2))  # every channel moved bins
    w = torch.ones(1, 1, 4, 4)
    h = colour_histograms(torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1)), w)
    assert h.shape == (1, 3, 16) and torch.allclose(h.sum(-1), torch.ones(1, 3))


def test_context_boxes_stay_inside_and_hold_the_window():
    boxes = torch.tensor([[0, 0, 9, 9], [23, 23, 9, 9], [10, 12, 9, 9]])
    ctx, inner = context_boxes(boxes, (32, 32))
    assert ctx[:, 2:].eq(18).all() and (ctx[:, :2] >= 0).all() and (ctx[:, :2] + 18 <= 32).all()
    assert torch.equal(ctx[:, :2] + inner[:, :2], boxes[:, :2]) and torch.equal(inner[:, 2:], boxes[:, 2:])
    assert context_squares(_images(3), boxes).shape == (3, 3, 18, 18)
    big = torch.rand(2, 3, 200, 200, generator=torch.Generator().manual_seed(2))
    assert context_squares(big, fixed_boxes(2, (200, 200), 60)).shape == (2, 3, 48, 48)  # downsampled


def test_the_detector_cannot_tell_identical_windows_and_spots_noise_patches():
    x = _images(40, seed=3)
    boxes = fixed_boxes(40, (32, 32), 9)
    clean = context_squares(x, boxes)
    same = detector_auc(clean, clean.clone(), seed=0)
    assert same["auc"] == pytest.approx(0.5) and same["train"] == same["test"] == 20
    smooth = torch.full_like(x, 0.5) + 0.05 * torch.linspace(-1, 1, 32)  # smooth images, a noise patch on them
    noisy = paste(smooth, torch.rand(40, 3, 9, 9, generator=torch.Generator().manual_seed(4)), boxes)
    spotted = detector_auc(context_squares(smooth, boxes), context_squares(noisy, boxes), seed=0)
    assert spotted["auc"] > 0.95 and spotted["interval"][0] <= spotted["auc"] <= spotted["interval"][1]
    again = detector_auc(context_squares(smooth, boxes), context_squares(noisy, boxes), seed=0)
    assert again == spotted  # seeded
    with pytest.raises(ValueError, match="too few"):
        detector_auc(clean[:3], clean[:3])
    with pytest.raises(ValueError, match="expected two N x C x s x s"):
        detector_auc(clean, clean[:10])
    with pytest.raises(ValueError, match="steps=0"):
        detector_auc(clean, clean, steps=0)


def test_the_detector_is_the_same_whatever_the_cpu_thread_count():
    # Unpinned, two threads and one trained weights 0.15 apart on these squares (CPU sums split by thread), so a
    # board's AUC depended on how many worker processes shared the cores.
    x = _images(120, seed=5)
    boxes = fixed_boxes(120, (32, 32), 11)
    patched = paste(x, torch.rand(120, 3, 11, 11, generator=torch.Generator().manual_seed(6)), boxes)
    before, weights = torch.get_num_threads(), []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            net = train_detector(context_squares(x, boxes), context_squares(patched, boxes), seed=0)
            assert torch.get_num_threads() == threads  # restored
            weights.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(*weights)


def test_roc_auc_matches_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(7)
    scores = torch.randint(0, 6, (200,), generator=g).float()  # many ties
    positive = torch.rand(200, generator=g) < 0.4
    assert roc_auc(scores, positive) == pytest.approx(roc_auc_score(positive.numpy(), scores.numpy()), abs=1e-12)
    assert roc_auc(torch.tensor([0.1, 0.2, 0.9]), torch.tensor([False, False, True])) == 1.0
    assert roc_auc(torch.zeros(4), torch.tensor([True, False, True, False])) == 0.5


def test_realism_accumulates_batches_and_pools_seeds():
    x = _images(12, seed=5)
    boxes = fixed_boxes(12, (32, 32), 9)
    x_adv = paste(x, torch.rand(12, 3, 9, 9, generator=torch.Generator().manual_seed(6)), boxes)
    whole, parts = Realism(), Realism()
    whole.update(x, x_adv, boxes)
    for i in range(0, 12, 5):
        parts.update(x[i:i + 5], x_adv[i:i + 5], boxes[i:i + 5])
    a, b = whole.summary(0), parts.summary(0)
    assert len(parts) == 12 and a["detector_auc"] == b["detector_auc"]
    for m in ("ssim", "psnr", "tv", "hist"):
        assert a[m]["n"] == 12 and math.isclose(a[m]["mean"], b[m]["mean"], rel_tol=1e-5)
        assert a[m]["interval"][0] <= a[m]["mean"] <= a[m]["interval"][1]
    merged = pool([a, a])
    assert merged["ssim"]["n"] == 24 and math.isclose(merged["ssim"]["mean"], a["ssim"]["mean"])
    values = window_measures(x, x_adv, boxes)["ssim"].double()
    assert math.isclose(merged["ssim"]["sd"], float(torch.cat([values, values]).std()), rel_tol=1e-6)
    # the same 12 images twice: the interval is a mean's over 12 images, not over 24 independent values
    half = (merged["ssim"]["interval"][1] - merged["ssim"]["interval"][0]) / 2
    assert math.isclose(half, 1.959964 * merged["ssim"]["sd"] / math.sqrt(12), rel_tol=1e-5)
    assert merged["detector_auc"]["auc"] == a["detector_auc"]["auc"] and merged["detector_auc"]["seeds"] == 2
    assert pool([a]) is a
