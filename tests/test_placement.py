import math

import pytest
import torch

from robust.placement import check_boxes, fixed_boxes, paste, patch_side, random_boxes, shape_mask, windows


def test_patch_side_from_area():
    assert patch_side(0.08, (32, 32)) == 9 and patch_side(0.08, (224, 224)) == 63
    assert patch_side(0.01, (32, 32)) == 3


@pytest.mark.parametrize("area", [0, -0.1, 1, 1.5, "8%"])
def test_patch_area_outside_zero_one(area):
    with pytest.raises(ValueError, match="area="):
        patch_side(area, (32, 32))


def test_patch_larger_than_the_image():
    with pytest.raises(ValueError, match="larger than the 4 x 40 image"):
        patch_side(0.5, (4, 40))
    with pytest.raises(ValueError, match="side=33"):
        fixed_boxes(2, (32, 32), 33)


def test_windows_find_the_salient_and_the_quiet_spot():
    sal = torch.zeros(2, 32, 32)
    sal[0, 20:25, 3:8] = 1.0
    sal[1, 0:5, 27:32] = 1.0
    sal[1, 10:32, 0:20] = 0.5
    boxes = windows(sal, 5)
    assert boxes.tolist() == [[20, 3, 5, 5], [0, 27, 5, 5]]
    quiet = windows(sal, 5, mode="min")
    for b, s in zip(quiet.tolist(), sal, strict=True):
        assert float(s[b[0]:b[0] + 5, b[1]:b[1] + 5].sum()) == 0.0
    strided = windows(sal, 5, stride=4)
    assert (strided[:, :2] % 4 == 0).all()


def test_random_and_fixed_boxes_lie_inside():
    g = torch.Generator().manual_seed(0)
    boxes = random_boxes(torch.rand(1000, 2, generator=g), (32, 40), 9)
    check_boxes(boxes, 1000, (32, 40))
    assert boxes[:, 0].max() == 23 and boxes[:, 1].max() == 31 and boxes[:, :2].min() == 0
    assert random_boxes(torch.tensor([[0.0, 0.0], [0.9999, 0.9999]]), (32, 40), 9)[:, :2].tolist() == [[0, 0], [23, 31]]
    assert fixed_boxes(2, (32, 32), 9).tolist() == [[11, 11, 9, 9]] * 2
    assert fixed_boxes(1, (32, 32), 9, "bottom-right").tolist() == [[23, 23, 9, 9]]


def test_masks():
    assert shape_mask("square", 5).sum() == 25
    disc = shape_mask("circle", 64)
    assert torch.equal(disc, disc.flip(0)) and torch.equal(disc, disc.T)
    assert abs(float(disc.mean()) - math.pi / 4) < 0.02
    with pytest.raises(ValueError, match="shape='star'"):
        shape_mask("star", 5)


def test_paste_places_each_patch_at_its_box_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 32, 32, generator=g)
    patch = torch.rand(6, 3, 9, 9, generator=g)
    boxes = random_boxes(torch.rand(6, 2, generator=g), (32, 32), 9)
    out = paste(x, patch, boxes)
    for i, (top, left, _, _) in enumerate(boxes.tolist()):  # a per-sample loop as the reference
        ref = x[i].clone()
        ref[:, top:top + 9, left:left + 9] = patch[i]
        assert torch.equal(out[i], ref)


def test_paste_with_a_circle_and_one_shared_patch():
    x = torch.rand(4, 3, 32, 32)
    patch = torch.rand(3, 8, 8)
    disc = shape_mask("circle", 8)
    boxes = fixed_boxes(4, (32, 32), 8)
    out = paste(x, patch, boxes, disc)
    region = out[:, :, 12:20, 12:20]
    assert torch.allclose(region * disc, patch.expand(4, -1, -1, -1) * disc)
    assert torch.equal(region * (1 - disc), x[:, :, 12:20, 12:20] * (1 - disc))


def test_paste_is_differentiable_in_the_patch():
    x = torch.rand(3, 3, 16, 16)
    patch = torch.rand(3, 3, 4, 4, requires_grad=True)
    mask = shape_mask("circle", 4)
    paste(x, patch, fixed_boxes(3, (16, 16), 4, "top-left"), mask).sum().backward()
    assert torch.equal(patch.grad, mask.expand(3, 3, 4, 4))


@pytest.mark.parametrize("boxes, match", [
    (torch.tensor([[0, 0, 4, 4], [13, 0, 4, 4]]), r"boxes\[1\] = \[13, 0, 4, 4\] lies outside"),
    (torch.tensor([[-1, 0, 4, 4], [0, 0, 4, 4]]), r"boxes\[0\]"),
    (torch.tensor([[0, 0, 4, 4]]), r"expected an integer tensor \(2, 4\)"),
    (torch.tensor([[0.0, 0, 4, 4], [0, 0, 4, 4]]), "integer tensor"),
    (torch.tensor([[0, 0, 5, 5], [0, 0, 5, 5]]), "patch's size 4 x 4"),
])
def test_bad_boxes(boxes, match):
    with pytest.raises(ValueError, match=match):
        paste(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 4, 4), boxes)


def test_bad_patches():
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="larger than the 16 x 16 image"):
        paste(x, torch.rand(2, 3, 20, 20), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expected \(2, 3, p, p\)"):
        paste(x, torch.rand(3, 3, 4, 4), fixed_boxes(2, (16, 16), 4))
    with pytest.raises(ValueError, match=r"expected \(2, 3, p, p\)"):
        paste(x, torch.rand(2, 1, 4, 4), fixed_boxes(2, (16, 16), 4))


def test_window_means_equal_average_pooling():
    from torch.nn.functional import avg_pool2d

    from robust.placement import window_means

    sal = torch.rand(3, 20, 24, generator=torch.Generator().manual_seed(0))
    for side in (1, 5, 20):
        ref = avg_pool2d(sal[:, None].double(), side, stride=1)[:, 0]
        assert torch.allclose(window_means(sal, side), ref, atol=1e-12)


def test_crop_is_the_inverse_of_paste():
    from robust.placement import crop

    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 3, 20, 20, generator=g)
    patch = torch.rand(5, 3, 6, 6, generator=g)
    boxes = random_boxes(torch.rand(5, 2, generator=g), (20, 20), 6)
    assert torch.equal(crop(paste(x, patch, boxes), boxes), patch)
    top, left = boxes[2, :2].tolist()
    assert torch.equal(crop(x, boxes)[2], x[2, :, top:top + 6, left:left + 6])
