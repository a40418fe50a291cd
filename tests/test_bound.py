"""Patches bounded to what they replace (``bound``): every patch attack stays within L-inf ``bound`` of the window
it covers, touches nothing outside it, and at ``bound=1`` is the free patch, unchanged."""

import pytest
import torch

from robust.attacks import GanPatch, UniversalPatch, make_attack
from robust.attacks.artifacts import resolve_checkpoint
from robust.data import load_dataset

EPS = 8 / 255


@pytest.fixture(scope="module")
def batch():
    return load_dataset("digits-m", "test").batch(slice(0, 12))


MAKERS = {
    "lavan": lambda **p: make_attack("lavan", area=0.12, steps=3, restarts=2, margin=5.0, **p),
    "noise-patch": lambda **p: make_attack("noise-patch", area=0.12, **p),
    "natural-patch": lambda **p: make_attack("natural-patch", area=0.12, **p),
    "gan-patch": lambda **p: GanPatch.load(resolve_checkpoint("zoo:digits-m/resnet/gan-patch-12pct"), refine=3, **p),
    "universal-patch": lambda **p: UniversalPatch.load(
        resolve_checkpoint("zoo:digits-m/resnet/universal-patch-12pct"), **p),
}


@pytest.mark.parametrize("name", MAKERS)
def test_every_patch_attack_stays_within_its_bound(resnet, batch, name):
    x, y = batch
    res = MAKERS[name](bound=EPS)(resnet, x, y)
    change = (res.x_adv - x).abs()
    inside = torch.zeros_like(x, dtype=torch.bool)
    for i, (r, c, h, w) in enumerate(res.boxes.tolist()):
        inside[i, :, r:r + h, c:c + w] = True
    assert float(change.max()) <= EPS + 1e-6 and float(change[~inside].max()) == 0.0
    assert float(change.amax((1, 2, 3)).min()) > EPS / 2  # the patch uses its budget
    free = MAKERS[name]()(resnet, x, y).x_adv
    assert float((free - x).abs().max()) > 4 * EPS  # the free patch is not bounded
    assert torch.equal(MAKERS[name](bound=1.0)(resnet, x, y).x_adv, free)


def test_a_wider_bound_reaches_more_targets(resnet, batch):
    from robust.metrics import count

    x, y = load_dataset("digits-m", "test").batch(slice(0, 48))
    hits = []
    for eps in (4 / 255, 64 / 255, 1.0):
        res = make_attack("lavan", area=0.12, steps=20, bound=eps)(resnet, x, y)
        with torch.no_grad():
            hits.append(count(resnet(x), resnet(res.x_adv), y, res.target).target_hit)
    assert hits[0] < hits[1] <= hits[2] + 2


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan"), True, "8/255"])
def test_a_bound_outside_0_1_is_refused_by_name(bad):
    with pytest.raises((ValueError, TypeError), match="bound"):
        make_attack("lavan", bound=bad)
