import pickle

import pytest
import torch
from torch import nn

from robust.checks import check_labels
from robust.models import Backbone, load_model, parse_spec, save_weights
from robust.models.zoo.archs import ARCHS

# spec -> (family, Grad-CAM layer, map shape at the default input size); random weights, built offline.
FAMILY_CASES = {
    "timm:resnet18?pretrained=false": ("cnn", "layer4.1", (512, 7, 7)),
    "timm:densenet121?pretrained=false": ("cnn", "features.norm5", (1024, 7, 7)),
    "timm:convnext_atto?pretrained=false": ("cnn", "stages.3.blocks.1", (320, 7, 7)),
    "timm:efficientnet_b0?pretrained=false": ("cnn", "bn2", (1280, 7, 7)),
    "timm:vit_tiny_patch16_224?pretrained=false": ("vit", "blocks.11.norm1", (192, 14, 14)),
    "timm:deit_tiny_distilled_patch16_224?pretrained=false": ("vit", "blocks.11.norm1", (192, 14, 14)),
    "timm:swin_tiny_patch4_window7_224?pretrained=false": ("swin", "layers.3.blocks.1.norm1", (768, 7, 7)),
    "timm:mixer_s16_224?pretrained=false": ("mlp", "blocks.7.norm1", (512, 14, 14)),
    "timm:resmlp_12_224?pretrained=false": ("mlp", "blocks.11.norm1", (384, 14, 14)),
    "timm:gmlp_ti16_224?pretrained=false": ("mlp", "blocks.29.norm", (128, 14, 14)),
    "timm:poolformer_s12?pretrained=false": ("metaformer", "stages.3.blocks.1", (512, 7, 7)),
    "torchvision:resnet18?weights=none": ("cnn", "layer4.1", (512, 7, 7)),
    "torchvision:densenet121?weights=none": ("cnn", "features.norm5", (1024, 7, 7)),
    "torchvision:vit_b_16?weights=none": ("vit", "encoder.layers.encoder_layer_11.ln_1", (768, 14, 14)),
    "torchvision:swin_t?weights=none": ("swin", "features.7.1.norm1", (768, 7, 7)),
}


def _cam_map(model: Backbone, x: torch.Tensor) -> torch.Tensor:
    out = {}
    handle = model.cam_layer.register_forward_hook(lambda m, i, o: out.setdefault("a", o))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return model.tokens_to_map(out["a"])


@pytest.mark.parametrize("spec", list(FAMILY_CASES))
def test_family_and_cam_layer_detected_from_structure(spec):
    family, layer, shape = FAMILY_CASES[spec]
    model = load_model(spec, device="cpu")
    assert (model.family, model.cam_layer_name) == (family, layer)
    assert model.num_classes == 1000 and model.input_size == (3, 224, 224) and len(model.class_names) == 1000
    assert tuple(_cam_map(model, torch.rand(2, 3, 224, 224)).shape) == (2, *shape)


ZOO_STRUCTURE = {"resnet": ("cnn", "layer4.0"), "vit": ("vit", "blocks.5.norm1"), "mixer": ("mlp", "blocks.5.norm1"),
                 "resmlp": ("mlp", "blocks.7.norm1"), "poolformer": ("metaformer", "stages.2.blocks.1"),
                 "convmixer": ("cnn", "blocks.7")}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_zoo_architectures_keep_a_spatial_map(arch):
    model = load_model(f"robust.models.zoo.archs:{arch}", device="cpu")
    assert (model.family, model.cam_layer_name) == ZOO_STRUCTURE[arch] and model.input_size == (3, 32, 32)
    cam = _cam_map(model, torch.rand(2, 3, 32, 32))
    assert cam.ndim == 4 and cam.shape[0] == 2 and min(cam.shape[-2:]) >= 4


def test_vit_prefix_tokens_are_dropped():
    model = load_model("timm:deit_tiny_distilled_patch16_224?pretrained=false", device="cpu")
    tokens = torch.arange(2 * 198 * 3, dtype=torch.float32).reshape(2, 198, 3)  # 2 prefix + 14 x 14
    grid = model.tokens_to_map(tokens)
    assert torch.equal(grid[:, :, 0, 0], tokens[:, 2]) and torch.equal(grid[:, :, -1, -1], tokens[:, -1])


@pytest.mark.parametrize("lite", [0, 1, 2])
def test_efficientnet_lite_real_imagenet_weights(lite):
    import timm

    from robust.data import load_dataset

    model = load_model(f"zoo:imagenet/efficientnet-lite{lite}", device="cpu")
    cfg = timm.get_pretrained_cfg(f"tf_efficientnet_lite{lite}").to_dict()
    assert (model.input_size, model.mean, model.std) == (cfg["input_size"], cfg["mean"], cfg["std"])
    photos = load_dataset("imagenet-photos", image_size=model.input_size[-1])
    x, _ = photos.batch(slice(None))
    with torch.no_grad():
        top5 = model(x).topk(5).indices
    chelsea, coffee = photos.meta["photos"].index("chelsea"), photos.meta["photos"].index("coffee")
    assert any(281 <= int(c) <= 285 for c in top5[chelsea])
    assert int(top5[coffee, 0]) == 967


class _TupleNet(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        logits = self.fc(self.features(x).mean((2, 3)))
        return (logits, x.mean()) if self.kind == "tuple" else {"logits": logits, "aux": x.mean()}


@pytest.mark.parametrize("kind", ["tuple", "dict"])
def test_tuple_and_dict_outputs_are_unwrapped(kind):
    model = Backbone(_TupleNet(kind), name=kind, input_size=(3, 16, 16))
    assert model.num_classes == 5 and model.family == "cnn" and model.cam_layer_name == "features.2"
    assert model(torch.rand(4, 3, 16, 16)).shape == (4, 5)


def test_backbone_leaves_the_network_as_found():
    net = ARCHS["resnet"][0](num_classes=10).train()
    for p in net.layer1.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    Backbone(net, name="resnet", input_size=(3, 32, 32))
    assert net.training and all(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.layer1.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_safetensors_roundtrip_records_architecture(tmp_path, resnet):
    path = tmp_path / "copy.safetensors"
    save_weights(path, resnet.net, arch="robust.models.zoo.archs:resnet", name="copy", num_classes=10,
                 input_size=resnet.input_size, mean=resnet.mean, std=resnet.std, class_names=resnet.class_names)
    copy = load_model(f"file:{path}", device="cpu")
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(copy(x), resnet(x))
    assert copy.mean == resnet.mean and copy.class_names == resnet.class_names


def test_torch_checkpoint_with_arch_option(tmp_path, resnet):
    path = tmp_path / "plain.pt"
    torch.save({"state_dict": resnet.net.state_dict()}, path)
    copy = load_model(f"file:{path}?arch=robust.models.zoo.archs:resnet", device="cpu")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(copy.logits((x - 0) * 1), copy(x))
        assert torch.allclose(copy.net((x - resnet._mean) / resnet._std), resnet(x))


def test_robustbench_through_its_own_zoo_offline(tmp_path):
    from robust.models.specs import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    net = model_dicts[BenchmarkDataset("cifar10")][ThreatModel("Linf")]["Ding2020MMA"]["model"]()
    ckpt = tmp_path / "cifar10" / "Linf" / "Ding2020MMA.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, ckpt)
    model = load_model(f"robustbench:cifar10/Linf/Ding2020MMA?model_dir={tmp_path}", device="cpu")
    assert model.num_classes == 10 and model.input_size == (3, 32, 32) and model.class_names[3] == "cat"
    assert model.family == "cnn" and not model.training
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), net.eval()(x), atol=1e-5)


# --- bad input --------------------------------------------------------------------------------------------

def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_unknown_spec_prefix():
    with pytest.raises(ValueError, match="unknown prefix") as e:
        parse_spec("hub:resnet")
    assert "timm:" in _one_line(e)


def test_unknown_timm_name_suggests_close_names():
    with pytest.raises(ValueError, match="resnet18") as e:
        load_model("timm:resnet181?pretrained=false")
    assert "did you mean" in _one_line(e)


def test_unknown_zoo_and_robustbench_names(tmp_path):
    with pytest.raises(ValueError, match="zoo model"):
        load_model("zoo:digits-m/lenet")
    with pytest.raises(ValueError, match="is missing") as e:
        load_model(f"robustbench:cifar10/Linf/Ding2020MMA?model_dir={tmp_path}")
    assert str(tmp_path) in _one_line(e)


def test_missing_file():
    with pytest.raises(ValueError, match="does not exist"):
        load_model("file:/nonexistent/model.safetensors")


def test_plain_checkpoint_options_go_to_the_architecture(tmp_path):
    net = ARCHS["resnet"][0](num_classes=7)
    path = tmp_path / "seven.pt"
    torch.save(net.state_dict(), path)
    model = load_model(f"file:{path}?arch=robust.models.zoo.archs:resnet&num_classes=7", device="cpu")
    assert model.num_classes == 7 and model.input_size == (3, 32, 32)


def test_checkpoint_with_wrong_shapes(tmp_path):
    net = ARCHS["resnet"][0](num_classes=7)
    path = tmp_path / "seven.pt"
    torch.save(net.state_dict(), path)
    with pytest.raises(ValueError, match=r"'fc.weight' has shape \(7, 128\), expected \(10, 128\)") as e:
        load_model(f"file:{path}?arch=robust.models.zoo.archs:resnet")
    _one_line(e)


class Payload:  # an arbitrary object: a pickle that is not plain weights
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_that_is_not_plain_weights(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Payload()}, f, protocol=2)
    with pytest.raises(ValueError, match="not plain weights") as e:
        load_model(f"file:{path}?arch=robust.models.zoo.archs:resnet")
    _one_line(e)


def test_safetensors_without_architecture(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="does not record its architecture"):
        load_model(f"file:{path}")


@pytest.mark.parametrize("x, match", [
    ((torch.rand(2, 3, 32, 32) * 255).to(torch.uint8), "dtype torch.uint8"),
    (torch.rand(2, 1, 32, 32), "1 channel"),
    (torch.rand(2, 4, 32, 32), "4 channel"),
    (torch.full((2, 3, 32, 32), float("nan")), "NaN"),
    (torch.rand(2, 3, 32, 32) * 255, r"expected images in \[0, 1\]"),
    (torch.rand(3, 32, 32), "N x 3 x H x W"),
])
def test_bad_images(resnet, x, match):
    with pytest.raises((ValueError, TypeError), match=match) as e:
        resnet(x)
    _one_line(e)


def test_labels_outside_the_class_range():
    with pytest.raises(ValueError, match=r"class 10; expected classes in \[0, 9\]"):
        check_labels(torch.tensor([0, 10]), 10)
    with pytest.raises(ValueError, match="1-D integer"):
        check_labels(torch.tensor([0.0, 1.0]), 10)
    with pytest.raises(ValueError, match="expected 3"):
        check_labels(torch.tensor([0, 1]), 10, n=3)


def test_bad_device():
    from robust.device import resolve_device

    with pytest.raises(ValueError, match="device='gpu'"):
        resolve_device("gpu")
    assert resolve_device("cpu").type == "cpu"


def test_timm_checkpoint_option_loads_local_weights(tmp_path):
    source = load_model("timm:resnet18?pretrained=false&num_classes=3", device="cpu")
    path = tmp_path / "r18.safetensors"
    from safetensors.torch import save_file

    save_file(source.net.state_dict(), str(path))
    copy = load_model(f"timm:resnet18?num_classes=3&checkpoint={path}", device="cpu")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(copy(x), source(x))


def test_backbone_pickles(resnet):
    import io

    vit = load_model("robust.models.zoo.archs:vit", device="cpu")
    x = torch.rand(2, 3, 32, 32)
    for model in (resnet, vit):
        buf = io.BytesIO()
        torch.save(model, buf)
        buf.seek(0)
        copy = torch.load(buf, weights_only=False)  # our own object, in memory: the test of picklability
        with torch.no_grad():
            assert torch.equal(copy(x), model(x))
        assert copy.cam_layer_name == model.cam_layer_name
    tokens = torch.rand(2, 64, 8)
    assert torch.equal(copy.tokens_to_map(tokens), vit.tokens_to_map(tokens))


def test_offline_pretrained_timm_weights_fail_in_one_line_at_once(monkeypatch):
    """Offline (here, the hub's host unreachable), a pretrained timm spec does not wait out the hub's retries."""
    import socket
    import time

    from huggingface_hub import constants, try_to_load_from_cache

    from robust.models import specs

    if isinstance(try_to_load_from_cache("timm/resnet18.a1_in1k", "model.safetensors"), str):
        pytest.skip("resnet18's weights are in this machine's hub cache: they load offline")
    saved = constants.HF_HUB_OFFLINE
    specs._hub_reachable.cache_clear()
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(OSError("unreachable")))
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=r"timm:resnet18: pretrained weights could not be loaded \(the hub is "
                                             r"unreachable: offline, only cached weights load\)") as err:
            load_model("timm:resnet18")
    finally:
        specs._hub_reachable.cache_clear()
    assert time.perf_counter() - start < 15 and "\n" not in str(err.value)
    assert saved == constants.HF_HUB_OFFLINE  # the hub's own setting is left as found


class _OneRow(nn.Module):
    """Returns one row of logits whatever the batch."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4, 10))

    def forward(self, x):
        return self.body(x)[:1]


def test_the_api_doors_answer_in_one_typed_line():
    """A module that cannot take the images, weights on the meta device, another size for a fixed-size model, a
    module that returns one row for four images, Patch Mixing on no images, realism.pool of nothing."""
    from robust.augment import PatchMixing
    from robust.models import as_backbone
    from robust.realism import pool

    fixed = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 32 * 32, 10))  # 32 px only
    with pytest.raises(ValueError, match=r"Sequential cannot take images of size \(3, 64, 64\): RuntimeError: mat1"):
        as_backbone(fixed, (3, 64, 64))
    assert as_backbone(fixed, (3, 32, 32)).num_classes == 10
    with torch.device("meta"):
        meta = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    with pytest.raises(ValueError, match="has its weights on the meta device"):
        as_backbone(meta, (3, 32, 32))
    vit = load_model("timm:vit_tiny_patch16_224?pretrained=false&img_size=32&patch_size=8")
    with pytest.raises(ValueError, match=r"takes \(3, 32, 32\) images; x has \(3, 48, 48\) and the network refused "
                                         r"it \(AssertionError"):
        vit(torch.rand(2, 3, 48, 48))
    assert vit(torch.rand(2, 3, 32, 32)).shape == (2, vit.num_classes)
    with pytest.raises(ValueError, match=r"_OneRow returned logits of shape \(1, 10\) for 4 images"):
        as_backbone(_OneRow(), (3, 16, 16))(torch.rand(4, 3, 16, 16))
    with pytest.raises(ValueError, match="x holds 0 images"):
        PatchMixing(4)(torch.rand(0, 3, 32, 32), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="summaries is empty"):
        pool([])
