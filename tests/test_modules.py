"""Models as objects: a plain ``nn.Module`` is accepted wherever a spec is, taking the data's image size, and left
as it was found."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robust import evaluate, load_dataset, load_model, make_attack, measure, run_evaluation
from robust.models import Backbone


def _net(classes: int = 10) -> nn.Module:
    """A small CNN of any input size (adaptive pooling), seeded, in training mode as a user's factory leaves it."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes)).train()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits-m", "test").subset(slice(0, 24))


def _state(net: nn.Module) -> tuple:
    return net.training, {k: v.clone() for k, v in net.state_dict().items()}


def _same(net: nn.Module, before: tuple) -> bool:
    training, state = before
    return net.training == training and all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_load_model_wraps_a_module_for_the_size_it_is_told(digits):
    net = _net()
    with pytest.raises(ValueError, match=r"does not say what images it takes; expected input_size=\(3, H, W\)"):
        load_model(net)
    model = load_model(net, input_size=(3, 32, 32))
    assert isinstance(model, Backbone) and model.input_size == (3, 32, 32) and model.num_classes == 10
    assert model.net is net and net.training  # its mode is its own
    assert load_model(model) is model
    with pytest.raises(TypeError, match=r"must be a robust Backbone or a torch\.nn\.Module"):
        make_attack("noise-patch", area=0.08)(object(), torch.rand(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))


def test_attacks_and_evaluations_take_a_plain_module_at_the_datas_size(digits):
    net = _net()
    before = _state(net)
    x, y = digits.batch(slice(0, 6))
    res = make_attack("noise-patch", area=0.08, seed=0)(net, x, y)
    assert res.x_adv.shape == x.shape
    counts = evaluate(make_attack("noise-patch", area=0.08, seed=0), net, digits)
    assert counts.n == 24
    curve = run_evaluation("patch-drop", net, digits, seeds=1, levels=[0.0, 0.5])
    assert curve.n == 24 and curve.x == [0.0, 0.5]
    assert _same(net, before)  # mode, weights and BatchNorm statistics as they were


def test_measure_takes_a_module_and_caches_it_by_its_weights(tmp_path):
    net = _net()
    first = measure(net, "noise-patch-8pct", samples=20, store=tmp_path)
    assert first.counts.n == 20 and not first.cached and first.model.startswith("module:torch.nn.modules")
    again = measure(_net(), "noise-patch-8pct", samples=20, store=tmp_path)  # the same weights: the same cell
    assert again.cached and again.key == first.key and again.counts == first.counts
    with torch.no_grad():
        net[-1].bias.add_(1.0)
    assert measure(net, "noise-patch-8pct", samples=20, store=tmp_path).key != first.key


def test_a_head_of_the_wrong_size_is_one_line_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="has 1000 classes and dataset 'digits-m' has 10"):
        measure(_net(1000), "noise-patch-8pct", samples=20, store=tmp_path)


def test_a_factory_whose_module_is_missing_says_so():
    with pytest.raises(ValueError, match=r"its module 'no_such_pkg' cannot be found on sys.path .*PYTHONPATH"):
        load_model("no_such_pkg:build")


def test_a_wrapper_around_a_backbone_finds_the_same_grad_cam_layer():
    zoo = load_model("zoo:digits-m/resnet", device="cpu")

    class Wrapper(nn.Module):  # a user's module whose only child is the whole network (its output: logits)
        def __init__(self):
            super().__init__()
            self.body = zoo.net

        def forward(self, x):
            return self.body(x)

    model = load_model(Wrapper(), input_size=(3, 32, 32))
    assert (model.family, model.cam_layer_name) == (zoo.family, "body." + zoo.cam_layer_name)
