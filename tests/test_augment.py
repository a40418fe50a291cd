import pytest
import torch

from robust.augment import PatchMixing, soft_targets


def _batch(b=8, size=32):
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 3, size, size, generator=g), torch.arange(b) % 10


def _mask(aug, x):
    from robust.grid import cell_mask

    return cell_mask(aug._params["cells"], tuple(x.shape[-2:]))


def test_mixing_replaces_whole_cells_at_the_same_positions():
    x, y = _batch()
    aug = PatchMixing(8, ratio=(0.0, 0.5), p=1.0, seed=3)
    out, rows = aug(x, y)
    perm, cells = aug._params["mix_pairs"], aug._params["cells"]
    mask = _mask(aug, x).expand_as(x)
    assert torch.equal(out[mask], x[perm][mask]) and torch.equal(out[~mask], x[~mask])  # same positions in both
    # the mask is constant on every 4 x 4 cell
    blocks = mask[:, 0].reshape(8, 8, 4, 8, 4).permute(0, 1, 3, 2, 4).flatten(3).float()
    assert bool(((blocks.amin(-1) == blocks.amax(-1))).all())
    frac = cells.flatten(1).float().mean(1)
    assert torch.allclose(rows[:, 2], 1 - frac) and torch.equal(rows[:, 1].long(), y[perm])
    assert torch.equal((frac * 64).round(), frac * 64) and float(frac.max()) <= 0.5  # whole cells, in range


def test_ratio_zero_is_identity_and_one_is_the_partner():
    x, y = _batch()
    out, rows = PatchMixing(4, ratio=0.0, p=1.0)(x, y)
    assert torch.equal(out, x) and bool((rows[:, 2] == 1).all())
    aug = PatchMixing(4, ratio=1.0, p=1.0)
    out, rows = aug(x, y)
    perm = aug._params["mix_pairs"]
    assert torch.equal(out, x[perm]) and bool((rows[:, 2] == 0).all())
    soft = soft_targets(rows, 10, smoothing=0.0)
    assert torch.equal(soft.argmax(1), y[perm]) and torch.allclose(soft.sum(1), torch.ones(8))


def test_fixed_ratio_rounds_to_whole_cells_and_cell_size_option():
    x, y = _batch(4, 32)
    aug = PatchMixing(cell=8, ratio=0.3, p=1.0)  # 4 x 4 grid: 0.3 * 16 = 4.8 -> 5 cells
    aug(x, y)
    assert aug._params["cells"].shape == (4, 4, 4)
    assert bool((aug._params["cells"].flatten(1).sum(1) == 5).all())


def test_draws_replay_and_follow_the_generator():
    x, y = _batch()
    a = PatchMixing(8, p=1.0, generator=torch.Generator().manual_seed(7))
    out1, rows1 = a(x, y)
    out2, rows2 = a(x, y, params=a._params)
    assert torch.equal(out1, out2) and torch.equal(rows1, rows2)
    b = PatchMixing(8, p=1.0, generator=torch.Generator().manual_seed(7))
    assert torch.equal(b(x, y)[0], out1)
    state = torch.get_rng_state()
    a(x, y)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never touched


def test_probability_gates_whole_batches():
    x, y = _batch()
    aug = PatchMixing(8, ratio=0.5, p=0.5, seed=1)
    applied = []
    for _ in range(200):
        out, rows = aug(x, y)
        applied.append(not torch.equal(out, x))
        if not applied[-1]:
            assert bool((rows[:, 2] == 1).all()) and torch.equal(rows[:, 1].long(), y)
    assert 0.35 < sum(applied) / len(applied) < 0.65
    out, _ = PatchMixing(8, ratio=0.5, p=0.0)(x, y)
    assert torch.equal(out, x)


def test_soft_targets_with_smoothing_work_with_timm_loss():
    from timm.loss import SoftTargetCrossEntropy

    x, y = _batch()
    aug = PatchMixing(8, ratio=0.25, p=1.0, soft=True, num_classes=10, label_smoothing=0.1)
    _, target = aug(x, y)
    assert target.shape == (8, 10) and torch.allclose(target.sum(1), torch.ones(8))
    perm = aug._params["mix_pairs"]
    own = target[torch.arange(8), y]
    expected = torch.where(perm == torch.arange(8), torch.tensor(1.0), torch.tensor(0.75)) * 0.9 + 0.01
    assert torch.allclose(own, expected)
    loss = SoftTargetCrossEntropy()(torch.randn(8, 10, requires_grad=True), target)
    loss.backward()


def test_inside_kornia_sequential_and_on_the_input_device():
    import kornia.augmentation as K

    x, y = _batch()
    aug = PatchMixing(8, ratio=0.5, p=1.0, data_keys=["input"])
    out = K.AugmentationSequential(K.RandomHorizontalFlip(p=0.0), aug, data_keys=["input"])(x)
    rows = aug.labels(y)
    assert out.device == x.device and rows.shape == (8, 3) and not torch.equal(out, x)


def test_batch_of_one_is_unchanged():
    x, y = _batch(1)
    out, rows = PatchMixing(8, ratio=0.5, p=1.0)(x, y)
    assert torch.equal(out, x) and rows.tolist() == [[0.0, 0.0, 1.0]]


@pytest.mark.parametrize("kwargs, match", [
    ({"ratio": 1.5}, "ratio=1.5"), ({"ratio": (-0.1, 0.5)}, r"ratio=\(-0.1, 0.5\)"), ({"p": 2}, "p=2"),
    ({"grid": 0}, "grid=0"), ({"grid": 4, "cell": 8}, "expected one of them"),
    ({"soft": True}, "soft=True needs num_classes"), ({"label_smoothing": 1.0}, "label_smoothing=1.0"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PatchMixing(**kwargs)


def test_bad_input():
    x, y = _batch()
    with pytest.raises(ValueError, match=r"grid=\(7, 7\) does not divide the 32 x 32 image"):
        PatchMixing(7, p=1.0)(x, y)
    with pytest.raises(ValueError, match=r"dtype torch\.uint8; expected float images"):
        PatchMixing(8, p=1.0)((x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match="lam='mixup' is not valid"):
        PatchMixing(8, lam="mixup")
    with pytest.raises(ValueError, match="labels has shape"):
        PatchMixing(8, p=1.0)(x, y[:3])
    with pytest.raises(ValueError, match="expected B x 3 rows"):
        soft_targets(y, 10)
    with pytest.raises(ValueError, match="num_classes=None"):
        soft_targets(torch.zeros(2, 3), None)
    with pytest.raises(ValueError, match="no parameters drawn yet"):
        PatchMixing(8).labels(y)


def test_channels_last_input_mixes_the_same_and_stays_channels_last():
    x, y = _batch()
    a = PatchMixing(8, p=1.0, seed=5)
    out, _ = a(x, y)
    again, _ = a(x.contiguous(memory_format=torch.channels_last), y, params=a._params)
    assert torch.equal(out, again) and again.is_contiguous(memory_format=torch.channels_last)


def test_soft_targets_through_kornia_sequential_the_documented_route():
    """The README's recipe: the container mixes the images, ``aug.labels(y)`` gives that draw's soft targets."""
    import kornia.augmentation as K

    x, y = _batch()
    aug = PatchMixing(8, ratio=0.25, p=1.0, soft=True, num_classes=10, label_smoothing=0.0, seed=3)
    seq = K.AugmentationSequential(K.RandomHorizontalFlip(p=1.0), aug, data_keys=["input"])
    out = seq(x)
    target = aug.labels(y)
    direct_out, direct_target = PatchMixing(8, ratio=0.25, p=1.0, soft=True, num_classes=10, label_smoothing=0.0)(
        x.flip(-1), y, params=aug._params)
    assert torch.equal(out, direct_out) and torch.equal(target, direct_target) and target.shape == (8, 10)


def test_kornias_label_convention_on_request():
    x, y = _batch()
    timm_rows = PatchMixing(8, ratio=0.25, p=1.0, seed=1)(x, y)[1]
    kornia_rows = PatchMixing(8, ratio=0.25, p=1.0, seed=1, lam="partner")(x, y)[1]
    assert torch.equal(kornia_rows[:, :2], timm_rows[:, :2]) and torch.allclose(kornia_rows[:, 2], 1 - timm_rows[:, 2])
    assert torch.allclose(soft_targets(kornia_rows, 10, 0.0, lam="partner"), soft_targets(timm_rows, 10, 0.0))


def test_the_mix_switch_picks_one_method_per_batch_with_its_probability():
    from robust.augment import mix

    x, y = _batch()
    switch = mix(patch_mixing=0.5, cutmix=0.25, mixup=0.25, num_classes=10, label_smoothing=0.0, seed=0)
    seen = {}
    for _ in range(200):
        out, target = switch(x, y)
        seen[switch.last] = seen.get(switch.last, 0) + 1
        assert out.shape == x.shape and target.shape == (8, 10) and torch.allclose(target.sum(1), torch.ones(8))
        if switch.last == "cutmix":  # the original's label weight is the share of the image the box left
            changed = (out != x).any(1).float().mean((1, 2))  # per image: share of its pixels replaced
            mixed = target.max(1).values < 1  # paired with another image
            assert torch.allclose(target[torch.arange(8), y][mixed], 1 - changed[mixed])
    assert set(seen) == {"patch_mixing", "cutmix", "mixup"} and 70 < seen["patch_mixing"] < 130
    again = mix(patch_mixing=0.5, cutmix=0.25, mixup=0.25, num_classes=10, label_smoothing=0.0, seed=0)
    first = mix(patch_mixing=0.5, cutmix=0.25, mixup=0.25, num_classes=10, label_smoothing=0.0, seed=0)
    for _ in range(5):  # a seed fixes every draw
        a, b = first(x, y), again(x, y)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    none = mix(num_classes=10, label_smoothing=0.1)
    out, target = none(x, y)
    assert none.last == "none" and torch.equal(out, x) and torch.allclose(target.max(1).values, torch.tensor(0.91))


@pytest.mark.parametrize("kwargs, match", [
    ({"patch_mixing": 0.7, "cutmix": 0.5}, "add up to 1.2; expected at most 1"),
    ({"mixup": -0.1}, "mixup=-0.1"), ({"cutmix_alpha": 0}, "cutmix_alpha=0"),
    ({"label_smoothing": 1}, "label_smoothing=1"),
])
def test_the_mix_switch_refuses_bad_settings(kwargs, match):
    from robust.augment import mix

    with pytest.raises(ValueError, match=match):
        mix(num_classes=10, **kwargs)
