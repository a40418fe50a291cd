"""PatchCleanser: the masks cover every patch, and a certified image is never flipped by a patch of that size."""

import pytest
import torch
import torch.nn.functional as F

from robust.checks import InputError
from robust.defenses import PatchCleanser, mask_set


def uncovered(masks: torch.Tensor, patch: int) -> int:
    """How many patch x patch windows of the image no mask hides wholly."""
    hidden = F.conv2d(masks.float()[:, None], torch.ones(1, 1, patch, patch))  # K x 1 x windows
    return int((~(hidden == patch * patch).any(0)).sum())


@pytest.mark.parametrize(("hw", "patch", "k"), [((32, 32), 5, 6), ((32, 32), 5, 3), ((32, 24), 7, 4),
                                                 ((224, 224), 32, 6), ((13, 13), 1, 13)])
def test_the_masks_cover_every_window_of_the_patch_size(hw, patch, k):
    masks = mask_set(hw, patch, k)
    assert masks.shape == (k * k, *hw) and uncovered(masks, patch) == 0


def test_the_coverage_check_can_fail():
    """A mask set built for a smaller patch leaves windows of the real size uncovered, and the check says so."""
    assert uncovered(mask_set((32, 32), 4, 6), 5) > 0


def test_a_mask_set_that_cannot_fit_is_one_clear_error():
    with pytest.raises(InputError, match=r"patch=40, k=6 do not fit a side of 32 pixels"):
        mask_set((32, 32), 40, 6)


def test_the_defended_prediction_is_the_double_masking_rule_and_the_model_is_left_as_found(resnet, digits_test):
    x, _ = digits_test.batch(torch.arange(6))
    resnet.train()
    defended = PatchCleanser(resnet, area=0.02, k=3)
    logits = defended(x)
    assert resnet.training and logits.shape == (6, 10)
    resnet.eval()
    labels = torch.stack([resnet.logits(x * (1 - m.float()) + 0.5 * m.float()).argmax(1) for m in defended.masks], 1)
    unanimous = (labels == labels[:, :1]).all(1)
    assert torch.equal(logits.argmax(1)[unanimous], labels[unanimous, 0])
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(defended(x).logsumexp(1).sum(), x)  # an adaptive attack's gradient: through the
    assert grad.abs().sum() > 0  # chosen masked image
    assert all(p.grad is None for p in resnet.parameters())


def test_a_model_whose_every_masked_prediction_agrees_is_certified_for_that_label_only():
    from torch import nn

    from robust.models import Backbone

    net = nn.Sequential(nn.Conv2d(3, 1, 1), nn.Flatten(), nn.Linear(16 * 16, 4))
    nn.init.zeros_(net[2].weight)
    with torch.no_grad():
        net[2].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0]))  # class 3, whatever the image
    defended = PatchCleanser(Backbone(net, name="constant", input_size=(3, 16, 16)), area=0.05, k=3)
    x = torch.rand(2, 3, 16, 16)
    assert defended(x).argmax(1).tolist() == [3, 3]
    assert defended.certify(x, torch.tensor([3, 2])).tolist() == [True, False]


def test_masking_for_training_hides_each_chosen_image_under_two_masks_of_the_set():
    from robust.zoo_training import masked

    masks = mask_set((16, 16), 3, 3)
    x = torch.rand(64, 3, 16, 16)
    out = masked(x, masks, torch.Generator().manual_seed(1))
    hidden = (out != x).any(1)  # N x H x W
    chosen = hidden.flatten(1).any(1)
    assert 16 < int(chosen.sum()) < 48  # about half
    assert torch.equal(out[~chosen], x[~chosen])
    unions = (masks[:, None] | masks[None]).flatten(0, 1)  # every pair's union
    assert all(any(torch.equal(h, u) for u in unions) for h in hidden[chosen])
    assert torch.equal(out, masked(x, masks, torch.Generator().manual_seed(1)))  # seeded
