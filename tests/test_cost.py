"""What an attack costs, counted by hooks on the victim (the refinement frontier's cost axis)."""

import pytest
import torch

from robust.attacks import evaluate, make_attack
from robust.attacks.cost import Passes, counting
from robust.data import load_dataset


@pytest.fixture(scope="module")
def batch():
    return load_dataset("digits-m", "test").batch(slice(0, 16))


def test_counting_adds_each_forward_and_each_backward_that_reaches_the_output(resnet, batch):
    x, _ = batch
    passes = Passes()
    with counting(resnet, passes):
        with torch.no_grad():
            resnet.logits(x)  # a forward alone
        inp = x.clone().requires_grad_(True)
        resnet.logits(inp[:5])  # a graph never differentiated: no backward
        torch.autograd.grad(resnet.logits(inp[:3]).sum(), inp)  # forward + backward of 3 images
    assert passes == Passes(images=0, forward=24, backward=3)
    resnet.logits(x)  # outside the block: not counted, and no hook is left on the model
    assert passes.forward == 24 and not resnet.net._forward_hooks


def test_an_attacks_passes_follow_its_steps_and_early_stop(resnet):
    data = load_dataset("digits-m", "test")
    noise, lavan = Passes(), Passes()
    evaluate(make_attack("noise-patch", area=0.12), resnet, data, samples=16, passes=noise)
    # Grad-CAM placement: one forward and one (partial) backward per image; the scoring forwards are not the attack's
    assert noise == Passes(images=16, forward=16, backward=16) and noise.per_image == 2.0
    evaluate(make_attack("lavan", area=0.12, steps=5), resnet, data, samples=16, passes=lavan)
    # placement, then at most 5 steps (forward + backward) and one last forward; images that succeed stop early
    assert lavan.images == 16 and 16 + 16 < lavan.forward <= 16 * (1 + 6) and lavan.backward <= 16 * (1 + 5)
    assert lavan.forward - 16 > lavan.backward - 16  # every image ends on a forward that is not differentiated
    assert (noise + lavan).images == 32 and Passes().per_image is None


def test_refinement_spends_only_what_it_needs_and_never_loses_a_success(resnet, batch):
    from robust.attacks import GanPatch
    from robust.attacks.artifacts import resolve_checkpoint
    from robust.attacks.lavan import success_margin

    x, y = batch
    path = resolve_checkpoint("zoo:digits-m/resnet/gan-patch-12pct")
    t = (y + 3) % 10
    plain, refined = Passes(), Passes()
    with counting(resnet, plain):
        alone = GanPatch.load(path)(resnet, x, y, t)
    with counting(resnet, refined):
        better = GanPatch.load(path, refine=10)(resnet, x, y, t)
    assert plain == Passes(forward=16, backward=16)  # the generator spends no victim pass; Grad-CAM one of each
    assert 32 < refined.forward <= 16 * 12 and refined.backward <= 16 * 11
    with torch.no_grad():
        before = success_margin(resnet(alone.x_adv), y, t)
        after = success_margin(resnet(better.x_adv), y, t)
    assert bool((after >= before - 1e-4).all())  # each image keeps its best patch, the generator's included
    assert int((after > 0).sum()) > int((before > 0).sum())
