import pytest
import torch

from robust.cam import METHODS, cam
from robust.data import load_dataset
from robust.models import load_model


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image Pearson correlation of two N x H x W map batches."""
    a, b = a.flatten(1), b.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits-m", "test").batch(slice(0, 12))


@pytest.mark.parametrize("arch", ["resnet", "vit", "mixer", "poolformer", "convmixer"])
def test_parity_with_pytorch_grad_cam_on_the_zoo(arch, digits):
    model = load_model(f"zoo:digits-m/{arch}", device="cpu")
    x, y = digits
    ours = cam(model, x, y)
    ref = cam(model, x, y, method="pgc-gradcam")  # pytorch-grad-cam's GradCAM, same layer and targets
    assert ours.shape == (12, 32, 32) and float(ours.min()) >= 0 and float(ours.max()) <= 1
    assert float(pearson(ours, ref).min()) >= 0.99


@pytest.mark.parametrize("spec", ["timm:resnet18?pretrained=false", "timm:vit_tiny_patch16_224?pretrained=false"])
def test_parity_with_pytorch_grad_cam_at_224(spec):
    torch.manual_seed(0)
    model = load_model(spec, device="cpu")
    x = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([1, 500, 999])
    ours, ref = cam(model, x, target), cam(model, x, target, method="pgc-gradcam")
    assert ours.shape == (3, 224, 224)
    assert float(pearson(ours, ref).min()) >= 0.99


def test_each_sample_uses_its_own_target(resnet, digits):
    x, y = digits
    together = cam(resnet, x[:4], y[:4])
    alone = torch.cat([cam(resnet, x[i:i + 1], y[i:i + 1]) for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-5)
    other = cam(resnet, x[:4], (y[:4] + 1) % 10)
    assert float(pearson(together, other).mean()) < 0.99  # a different class gives a different map


def test_default_target_is_the_prediction(resnet, digits):
    x, _ = digits
    with torch.no_grad():
        pred = resnet(x).argmax(1)
    assert torch.equal(cam(resnet, x), cam(resnet, x, pred))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "eigencam"])
def test_model_is_left_as_found(method, digits):
    model = load_model("zoo:digits-m/resnet", device="cpu")
    model.train()
    model.net.layer1.requires_grad_(False)
    grad = torch.ones_like(model.net.fc.weight)
    model.net.fc.weight.grad = grad.clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    cam(model, *digits, method=method)
    assert [m.training for m in model.modules()] == flags
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # incl. BatchNorm buffers
    assert not any(p.requires_grad for p in model.net.layer1.parameters())
    assert torch.equal(model.net.fc.weight.grad, grad) and model.net.conv1.weight.grad is None


def test_other_methods_are_reachable(resnet, digits):
    x, y = digits
    for method in ("gradcam++", "xgradcam", "eigencam", "layercam"):
        maps = cam(resnet, x[:2], y[:2], method=method, size=(16, 16))
        assert maps.shape == (2, 16, 16) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    assert "scorecam" in METHODS


def test_bad_input(resnet, digits):
    x, y = digits
    with pytest.raises(ValueError, match="target has 3 labels; expected 12"):
        cam(resnet, x, y[:3])  # never truncated or broadcast
    with pytest.raises(ValueError, match=r"class 10; expected classes in \[0, 9\]"):
        cam(resnet, x[:1], torch.tensor([10]))
    with pytest.raises(TypeError, match=r"target must be a torch\.Tensor"):
        cam(resnet, x[:1], 3)
    with pytest.raises(ValueError, match="empty batch"):
        cam(resnet, x[:0], y[:0])
    with pytest.raises(ValueError, match=r"method='gradcam\+' is not valid"):
        cam(resnet, x, y, method="gradcam+")
    with pytest.raises(TypeError, match="Backbone"):
        cam(resnet.net, x, y)
