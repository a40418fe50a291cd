import pytest
import torch

from robust.cam import rise
from robust.draws import Draws, Pool
from robust.evaluations import Curve, PatchDrop, PatchMixingCurve, Selectivity, Sweep, run_evaluation
from robust.grid import cell_mask, cell_sums, default_grid, grid_shape, random_cells, shuffle_cells, top_cells


@pytest.fixture(scope="module")
def small(digits_test):
    return digits_test.subset(slice(0, 100))


def test_grid_helpers():
    g = torch.Generator().manual_seed(0)
    cells = random_cells(torch.rand(5, 16, generator=g), 4, 4, torch.tensor([0, 1, 5, 16, 3]))
    assert cells.flatten(1).sum(1).tolist() == [0, 1, 5, 16, 3]
    mask = cell_mask(cells, (32, 32))
    assert mask.shape == (5, 1, 32, 32) and int(mask[2].sum()) == 5 * 64
    scores = torch.arange(16.0).view(1, 4, 4)
    assert top_cells(scores, 3)[0].flatten().nonzero().flatten().tolist() == [13, 14, 15]
    assert top_cells(scores, 2, largest=False)[0].flatten().nonzero().flatten().tolist() == [0, 1]
    maps = torch.ones(2, 8, 8)
    assert torch.equal(cell_sums(maps, 2, 2), torch.full((2, 2, 2), 16.0))
    x = torch.rand(3, 3, 8, 8, generator=g)
    shuffled = shuffle_cells(x, 2, 2, torch.rand(3, 4, generator=g))
    blocks = lambda t: sorted(t[0, :, i:i + 4, j:j + 4].sum().item() for i in (0, 4) for j in (0, 4))
    assert blocks(shuffled) == pytest.approx(blocks(x))  # the same cells, another order
    assert torch.equal(shuffle_cells(x, 1, 1, torch.rand(3, 1, generator=g)), x)
    assert grid_shape(4, (32, 32)) == (4, 4) and default_grid((32, 32)) == 8 and default_grid((224, 224)) == 14
    assert default_grid((224, 224), coarse=True) == 7 and default_grid((32, 32), coarse=True) == 4
    # EfficientNet-Lite1 / Lite2 sizes: the nearest counts that divide the side (16 does not divide 260)
    assert [default_grid((s, s), coarse=c) for s in (240, 260) for c in (False, True)] == [15, 8, 13, 5]


def test_curve_area():
    c = Curve("t", [0.0, 0.5, 1.0], [1.0, 0.5, 0.0], [0, 0, 0], 10, 1, "x", "y")
    assert c.area == pytest.approx(0.5) and c.to_dict()["area"] == pytest.approx(0.5)


def test_patch_drop_random_and_by_saliency(resnet, small):
    rnd = run_evaluation("patch-drop", resnet, small, levels=[0.0, 0.5, 0.9], seeds=2)
    assert rnd.n == 100 and rnd.seeds == 2 and rnd.x == [0.0, 0.5, 0.890625]  # 57 of 64 cells
    assert rnd.mean[0] > 0.9 and rnd.mean[0] > rnd.mean[1] > rnd.mean[2] and rnd.std[0] == 0
    salient = run_evaluation("patch-drop", resnet, small, levels=[0.25], order="salient", seeds=1)
    quiet = run_evaluation("patch-drop", resnet, small, levels=[0.25], order="non-salient", seeds=1)
    assert salient.mean[0] < quiet.mean[0]  # the salient cells carry the class
    assert salient.name == "salient-drop" and salient.params["order"] == "salient"


@pytest.mark.parametrize(("method", "options", "measured"), [
    ("patch-drop", {"levels": [0.0, 0.5]}, 3),  # level 0 drops nothing: measured once for both seeds
    ("patch-drop", {"levels": [0.0, 0.5], "order": "salient"}, 2),  # a fixed order: every level once
    ("patch-drop", {"levels": [0.0, 0.5], "order": "salient", "fill": "noise"}, 3),  # the noise is drawn per seed
    ("patch-shuffle", {"grids": [1, 4]}, 3),
    ("patch-mixing", {"ratios": [0.0, 0.5]}, 3),
    ("selectivity", {"ratios": [0.0, 0.5]}, 3),
    ("selectivity", {"ratios": [0.0, 0.5], "saliency": "rise", "masks": 8}, 4),  # RISE draws its masks per seed
])
def test_a_point_no_draw_changes_is_measured_once_with_the_same_curve(resnet, small, monkeypatch, method, options,
                                                                      measured):
    from robust.evaluations import Evaluation
    from robust.registry import get

    cls = type(get(method, "evaluation").make(**options))
    calls = []
    real = cls.measure
    monkeypatch.setattr(cls, "measure", lambda self, *a: calls.append(1) or real(self, *a))
    images = small.subset(slice(0, 24))  # one batch
    shared = run_evaluation(method, resnet, images, seeds=2, **options)
    assert len(calls) == measured
    monkeypatch.setattr(cls, "seed_free", Evaluation.seed_free)  # every seed measured: the same curve
    assert run_evaluation(method, resnet, images, seeds=2, **options).to_dict() == shared.to_dict()
    assert len(calls) == measured + 4


def test_patch_drop_fills(resnet, small):
    for fill in ("zero", "mean", "noise", 0.5):
        c = run_evaluation("patch-drop", resnet, small, levels=[0.0, 0.3], fill=fill, seeds=1)
        assert 0 <= c.mean[1] <= c.mean[0]


def test_patch_shuffle(resnet, small):
    c = run_evaluation("patch-shuffle", resnet, small, seeds=2)
    assert c.x == [1.0, 2.0, 4.0, 8.0] and c.mean[0] > 0.9 and c.mean[-1] < c.mean[0]


def test_patch_mixing_draws_donors_of_another_class_from_the_whole_set():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 3, 8, 8, generator=g), torch.tensor([0, 0, 1, 1, 2, 2])
    draws = Draws(0, torch.arange(2), Pool((x, y)))  # a batch of the first two images; donors from all six
    mixing, sweep = PatchMixingCurve(), Sweep(None, [0.5], [0.5], {}, 4, 4)
    params = mixing.parameters(sweep, x[:2], y[:2], 0.5, draws, None)
    mixed, cells, donor = mixing.mixed(x[:2], params), params["cells"], params["donor"]
    assert bool(params["valid"].all()) and bool((y[donor] != 0).all()) and cells.flatten(1).sum(1).tolist() == [8] * 2
    mask = cell_mask(cells, (8, 8)).expand_as(x[:2])
    assert torch.equal(mixed[mask], x[donor][mask]) and torch.equal(mixed[~mask], x[:2][~mask])
    alone = Draws.of_batch(0, x[:2], y[:2])
    assert not bool(mixing.parameters(sweep, x[:2], y[:2], 0.5, alone, None)["valid"].any())  # no image of another
    # class: left out, never mixed with its own class


def test_patch_mixing_curve_falls_with_the_ratio(resnet, small):
    c = run_evaluation("patch-mixing", resnet, small, ratios=[0.0, 0.3, 0.5], seeds=3)
    assert c.mean[0] > c.mean[1] > c.mean[2] and c.std[1] > 0 and c.ylabel == "accuracy"
    assert c.x == [0.0, 19 / 64, 0.5]  # the fractions actually mixed: round(0.3 * 64) = 19 of the 8 x 8 cells
    low, high = c.area_interval  # bootstrap over the images: around the area, and narrower with more images
    assert low < c.area < high and 0 < high - low < 0.2
    fewer = run_evaluation("patch-mixing", resnet, small.subset(slice(0, 25)), ratios=[0.0, 0.3, 0.5], seeds=3)
    assert fewer.area_interval[1] - fewer.area_interval[0] > high - low


def test_selectivity_gradcam_and_rise(resnet, small):
    few = small.subset(slice(0, 20))
    g = run_evaluation("selectivity", resnet, few, ratios=[0.2, 0.5], seeds=1)
    assert 0 < g.mean[0] < g.mean[1] < 1  # more donor cells, more out-of-context mass
    assert g.x == [13 / 64, 0.5] and g.name == "selectivity" and not g.higher_is_better
    r = run_evaluation("selectivity", resnet, few, ratios=[0.3], saliency="rise", masks=16, seeds=1)
    assert 0 <= r.mean[0] <= 1 and r.params["masks"] == 16


def test_rise_explains_the_class():
    from robust.models import load_model

    model = load_model("zoo:digits-m/resnet", device="cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    maps = rise(model, x, torch.tensor([[0, 1], [2, 3]]), 0, masks=8)
    assert maps.shape == (2, 2, 32, 32) and float(maps.min()) >= 0


@pytest.mark.parametrize("call, match", [
    (lambda m, d: PatchDrop(levels=[1.5]), r"levels=\[1\.5\]"),  # options: checked with no model
    (lambda m, d: PatchDrop(fill=2.0), "fill=2.0"),
    (lambda m, d: PatchDrop(fill="blue"), "fill='blue'"),
    (lambda m, d: run_evaluation("patch-drop", m, d, grid=7), "grid=7 does not divide the 32 x 32 image"),
    (lambda m, d: PatchDrop(order="middle"), "order='middle'"),
    (lambda m, d: run_evaluation("patch-mixing", m, d, ratios=[-0.1]), "ratios="),
    (lambda m, d: run_evaluation("patch-mixing", m, d, seeds=0), "seeds=0"),
    (lambda m, d: Selectivity(saliency="attention"), "saliency='attention'"),
    (lambda m, d: run_evaluation("occlude-all", m, d), "evaluation 'occlude-all' is unknown"),
    (lambda m, d: run_evaluation("patch-drop", m, d, strength=2), "does not take the parameter"),
    (lambda m, d: run_evaluation("patch-drop", object(), d), "model must be a robust Backbone"),
])
def test_bad_input(call, match, resnet, small):
    with pytest.raises((ValueError, TypeError), match=match):
        call(resnet, small)


def test_an_evaluation_is_a_class_whose_variants_are_its_options(resnet, small):
    from robust import registry

    salient = registry.get("salient-drop", "evaluation").make(levels=[0.25], seeds=1)
    assert isinstance(salient, PatchDrop) and salient.order == "salient" and salient.curve_name == "salient-drop"
    assert "order" not in registry.get("salient-drop", "evaluation").params()  # the variant fixes it
    curve = salient(resnet, small.subset(slice(0, 10)), batch_size=4)
    assert curve.name == "salient-drop" and curve.params == {"grid": 8, "order": "salient", "fill": "zero", "seed": 0}
    same = run_evaluation("patch-drop", resnet, small.subset(slice(0, 10)), levels=[0.25], order="salient", seeds=1)
    assert same.mean == curve.mean and same.name == "salient-drop"  # one batch or three: the same curve


def test_the_model_is_left_as_found(small):
    from robust.models import load_model

    model = load_model("zoo:digits-m/resnet", device="cpu").train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ("salient-drop", "selectivity"):
        run_evaluation(name, model, small.subset(slice(0, 10)), seeds=1)
    assert model.training and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
