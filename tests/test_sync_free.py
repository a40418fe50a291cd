"""Hot steps that never wait on the host (issue 31), checked on a CPU.

``torch.compile(fullgraph=True)`` with the eager backend traces a function without compiling it and fails on a
graph break, naming the line: a value read back from a tensor (``.item()``, ``bool(tensor)``, ``nonzero``,
boolean-mask indexing, a Python branch on a tensor) is exactly what would make a GPU wait. Covered so far: the
generator's patch pasted at its windows (gan-patch's forward: context, generator, crop, paste), PGD's step (its
per-image early stop masked; finished images leave the batch on a schedule, outside the step, which changes no
image), LaVAN's and gan-patch refinement's step (the same, with Adam's per-image moments), Grad-CAM's maps
(forward, backward to its layer, weights; its hook registered around the traced call), Patch Mixing's mix, the
placement's window choice and a backbone's forward, and the occlusion sweeps' inner step (patch-drop's cells chosen
from the Grad-CAM sums and dropped, patch-shuffle's permutation, the forward that scores them). Not yet: the input
checks at each public call; the per-image random draws (``robust.draws``) do not trace (a dynamo limit on building
their objects, not a read from the device).
"""

from __future__ import annotations

import pytest
import torch

from robust.attacks import make_attack
from robust.attacks.gan_networks import Generator
from robust.augment import PatchMixing
from robust.placement import paste, windows


def traced(fn, *args):
    """``fn(*args)`` traced whole by dynamo (eager backend: nothing compiled); a graph break fails the test."""
    torch._dynamo.reset()
    try:
        with torch._dynamo.config.patch(trace_autograd_ops=True):  # a step's own gradient is part of its graph
            return torch.compile(fn, backend="eager", fullgraph=True)(*args)
    except (torch._dynamo.exc.Unsupported, torch._dynamo.exc.UserError) as e:
        pytest.fail(f"{getattr(fn, '__name__', fn)} waits on the host: {str(e).splitlines()[0]}\n{e}")


def test_a_host_sync_fails_the_check_and_names_its_line():
    with pytest.raises(pytest.fail.Exception, match=r"test_sync_free\.py"):
        traced(lambda x: x[x > 0.5].sum() if bool((x > 0).all()) else x.sum(), torch.rand(8))


def test_gan_patch_forward_is_one_graph():
    """Context, generator, crop and paste, with the side known to the host (no box read back)."""
    x = torch.rand(4, 3, 32, 32)
    boxes = torch.tensor([[0, 0, 5, 5], [3, 4, 5, 5], [10, 10, 5, 5], [27, 27, 5, 5]])
    mask, generator, attack = torch.ones(5, 5), Generator(10).eval(), make_attack("gan-patch", area=0.02)

    def forward(x, boxes, target):  # what GanPatch's training step and forward do after placement
        return paste(x, attack._generate(generator, x, boxes, mask, target), boxes, mask, check=False)

    with torch.no_grad():
        out = traced(forward, x, boxes, torch.tensor([1, 2, 3, 4]))
        assert torch.equal(out, forward(x, boxes, torch.tensor([1, 2, 3, 4])))


def test_patch_mixing_and_window_placement_are_one_graph(resnet):
    x = torch.rand(8, 3, 32, 32)
    aug = PatchMixing(p=1.0)
    params = aug.forward_parameters(x.shape)
    assert torch.equal(traced(lambda x: aug.apply_transform(x, params, {}), x), aug.apply_transform(x, params, {}))
    saliency = torch.rand(8, 32, 32)
    assert torch.equal(traced(lambda s: windows(s, 5, stride=3), saliency), windows(saliency, 5, stride=3))
    with torch.no_grad():
        assert torch.allclose(traced(resnet.logits, x), resnet.logits(x))


def test_a_pgd_step_is_one_graph(resnet):
    """Masked early stop: a finished image keeps its perturbation, an active one moves, all in one graph."""
    from robust.attacks.lp import pgd_step

    x, delta = torch.rand(4, 3, 32, 32), torch.zeros(4, 3, 32, 32)
    active = torch.tensor([True, True, False, True])
    with torch.no_grad():
        y = resnet.logits(x).argmax(1)  # its own predictions: no image is adversarial before the step
    step = lambda x, delta, active: pgd_step(resnet, x, y, None, delta, active,
                                             norm="Linf", eps=8 / 255, alpha=2 / 255, loss="ce", last=False)
    got, want = traced(step, x, delta, active), step(x, delta, active)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert torch.equal(got[2][2], delta[2]) and not torch.equal(got[2][0], delta[0])


def test_a_patch_step_is_one_graph(resnet):
    """LaVAN's and refinement's step with Adam: an inactive image keeps its patch and its moments."""
    from robust.attacks.lavan import patch_step

    x, patch = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 5, 5)
    boxes, active = torch.tensor([[0, 0, 5, 5], [9, 9, 5, 5], [20, 3, 5, 5]]), torch.tensor([True, False, True])
    moments = (torch.zeros_like(patch), torch.zeros_like(patch))

    def step(x, patch, active):
        return patch_step(resnet, x, torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7]), patch, boxes, torch.ones(5, 5),
                          active, moments, step=0, step_size=0.1, loss="cw", margin=1e9, limits=None, last=False)

    got, want = traced(step, x, patch, active), step(x, patch, active)
    assert torch.equal(got[2], want[2]) and all(torch.equal(a, b) for a, b in zip(got[3], want[3], strict=True))
    assert torch.equal(got[2][1], patch[1]) and torch.equal(got[3][0][1], moments[0][1])
    assert not torch.equal(got[2][0], patch[0])


def test_grad_cam_is_one_graph(resnet):
    """Grad-CAM's forward, backward to its layer and weighted maps, the hook registered around the traced call."""
    from robust.cam import _gradcam, gradcam_maps

    x, store = torch.rand(4, 3, 32, 32), {}
    handle = resnet.cam_layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("act", out))
    try:
        maps = traced(lambda x: gradcam_maps(resnet, x, None, store), x)
    finally:
        handle.remove()
    assert torch.allclose(maps, _gradcam(resnet, x, None), atol=1e-6) and not store


def test_the_occlusion_sweeps_inner_step_is_one_graph(resnet):
    from robust.draws import Draws
    from robust.evaluations.occlusion import PatchDrop, PatchShuffle

    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    drop = PatchDrop(order="salient")
    sweep = drop.plan(resnet)
    context, draws = drop.prepare(sweep, x, y), Draws.of_batch(0, x, y)
    step = lambda x, context: drop.measure(sweep, x, y, drop.parameters(sweep, x, y, 0.25, draws, context))
    assert all(torch.equal(a, b) for a, b in zip(traced(step, x, context), step(x, context), strict=True))
    shuffle = PatchShuffle()
    sweep = shuffle.plan(resnet)
    params = shuffle.parameters(sweep, x, y, 4, draws, None)
    step = lambda x: shuffle.measure(sweep, x, y, params)
    assert all(torch.equal(a, b) for a, b in zip(traced(step, x), step(x), strict=True))


@pytest.mark.parametrize("name, options", [("pgd-linf-8", {"steps": 6}), ("lavan", {"steps": 6, "area": 0.05})])
def test_when_finished_images_leave_the_batch_never_changes_an_image(name, options, resnet, digits_test,
                                                                     monkeypatch):
    """``compact_after``'s schedule trades host syncs for wasted steps; the per-image early stop gives the same
    adversarial images whatever it is (here, where the kernels' arithmetic does not depend on the batch's size):
    after every step (the CPU's), an accelerator's, or never within a restart."""
    import robust.attacks.base as base
    import robust.attacks.lavan as lavan
    import robust.attacks.lp as lp

    x, y = digits_test.batch(slice(0, 24))
    attack = make_attack(name, **options)
    results = []
    for every, early in ((1, 0), (base.COMPACT_EVERY, base.COMPACT_EARLY), (100, 0)):
        rule = lambda step, device, every=every, early=early: step < early or (step + 1) % every == 0
        for module in (lp, lavan):
            monkeypatch.setattr(module, "compact_after", rule)
        results.append(attack(resnet, x, y).x_adv)
    assert all(torch.equal(results[0], r) for r in results[1:])
