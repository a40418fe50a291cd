"""PatchCleanser: the masks cover every patch, the defended model is a model like any other (spec, registry, attacks,
Grad-CAM), and a certified image is never flipped by a patch of that size at any place (and the search that checks
it finds the violations of a mask set that is too small)."""

import pytest
import torch
import torch.nn.functional as F

from robust.checks import InputError
from robust.defenses import LocalGradientSmoothing, PatchCleanser, gradient_mask, mask_set, violations
from robust.models import load_model
from robust.placement import placements


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


def double_masking(model, x, masks):
    """The paper's rule, written out with every two-mask prediction: the reference for the batched defence."""
    k, n = masks.shape[0], x.shape[0]
    pairs = (masks[:, None] | masks[None]).reshape(k * k, 1, 1, *masks.shape[1:]).float()  # (a, b) -> hidden
    hidden = (x[None] * (1 - pairs) + 0.5 * pairs).flatten(0, 1)  # every image under every pair, in one batch
    second = model.logits(hidden).argmax(1).reshape(k, k, n).permute(2, 0, 1)  # N x K x K
    first = second.diagonal(dim1=1, dim2=2)  # the pair (i, i) is mask i alone
    out = []
    for n in range(x.shape[0]):
        labels = first[n]
        majority = int(labels.mode().values)
        if (labels == labels[0]).all():
            out.append(int(labels[0]))
            continue
        winners = [int(labels[i]) for i in range(k)
                   if labels[i] != majority and (second[n, i] == labels[i]).all()]
        out.append(winners[0] if winners else majority)
    disagreed = int((first != first[:, :1]).any(1).sum())
    return torch.tensor(out), (second.flatten(1) == torch.tensor(out)[:, None]).all(1), disagreed


def test_the_defended_prediction_is_the_double_masking_rule_and_the_model_is_left_as_found(resnet, digits_test):
    """The second round runs only where the first disagrees, yet the label and the certificate are the rule's."""
    x, _ = digits_test.batch(torch.arange(12))
    x[:6, :, 10:16, 10:16] = torch.rand(6, 3, 6, 6, generator=torch.Generator().manual_seed(0))  # disagreements
    state = {k: v.clone() for k, v in resnet.state_dict().items()}
    defended = PatchCleanser(resnet, area=0.02, k=3)
    with torch.no_grad():
        logits = defended(x)
        want, certified, disagreed = double_masking(resnet, x, defended.masks)
    assert not defended.training and logits.shape == (12, 10)
    assert torch.equal(logits.argmax(1), want) and torch.equal(defended.certify(x, want), certified)
    assert disagreed > 0  # the second round ran
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(defended(x).logsumexp(1).sum(), x)  # an adaptive attack's gradient: through the
    assert grad.abs().sum() > 0  # chosen masked image
    assert all(p.grad is None for p in resnet.parameters())
    assert all(torch.equal(v, state[k]) for k, v in resnet.state_dict().items()) and not resnet.training


def test_a_defense_spec_loads_like_any_model_and_bad_specs_are_one_line():
    defended = load_model("defense:patchcleanser?area=0.02&k=4&base=zoo:digits-m/resnet", "cpu")
    assert isinstance(defended, PatchCleanser) and defended.patch == 5 and defended.masks.shape[0] == 16
    assert defended.spec == "defense:patchcleanser?area=0.02&k=4&fill=0.5&base=zoo:digits-m/resnet"
    assert defended.name == "zoo:digits-m/resnet+patchcleanser" and defended.family == "cnn"
    assert load_model(defended.spec, "cpu").spec == defended.spec  # its spec loads it again
    # the base's network is one module, held once: the repr and the state_dict list it once, under the base
    assert defended.net is defended.base.net and repr(defended).count("(net): ResNet(") == 1
    assert [k.removeprefix("base.") for k in defended.state_dict()] == list(defended.base.state_dict())
    for spec, message in [
        ("defense:patchcleanser?area=0.02", r"names no base model; expected 'defense:NAME\?OPTIONS&base=SPEC'"),
        ("defense:nope?base=zoo:digits-m/resnet", r"defense 'nope' is unknown; expected one of \['lgs', "
                                                   r"'patchcleanser'\]"),
        ("defense:patchcleanser?aera=0.02&base=zoo:digits-m/resnet", r"parameter 'aera' \(did you mean area\?\)"),
        ("defense:patchcleanser?base=defense:patchcleanser?base=zoo:digits-m/resnet", "is already defended"),
    ]:
        with pytest.raises(InputError, match=message):
            load_model(spec, "cpu")


def test_a_defense_base_keeps_its_own_options():
    """Everything after base= is the base's spec, its own '?' and '&' options included."""
    defended = load_model("defense:patchcleanser?k=3&base=timm:resnet18?pretrained=false&num_classes=7&"
                          "input_size=3x32x32", "cpu")
    assert defended.num_classes == 7 and defended.input_size == (3, 32, 32) and defended.masks.shape[0] == 9


def test_grad_cam_of_a_defended_model_is_its_base_networks(resnet, digits_test):
    from robust.cam import cam

    x, _ = digits_test.batch(torch.arange(4))
    defended = PatchCleanser(resnet, area=0.02, k=3)
    assert defended.undefended is resnet and resnet.undefended is resnet
    assert torch.allclose(cam(defended, x), cam(resnet, x))


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


def test_placements_reach_every_place_on_the_grid_and_the_far_edges():
    boxes = placements((32, 24), 5, stride=1)
    assert boxes.shape == (28 * 20, 4) and boxes[:, :2].max(0).values.tolist() == [27, 19]
    assert sorted({int(t) for t in placements((32, 32), 5, stride=6)[:, 0]}) == [0, 6, 12, 18, 24, 27]


def mutated(defended: PatchCleanser, patch: int) -> PatchCleanser:
    """The same defence with a mask set built for a smaller patch: it still claims the real one."""
    defended.masks = mask_set(tuple(defended.input_size[1:]), patch, defended.k)
    return defended


def check_invariant(resnet, digits_test, index: torch.Tensor, k: int, stride: int, plain: bool) -> None:
    """Each image's own LaVAN patch (optimised on the base, 2 %) and, with ``plain``, a black and a white one, at
    every place of a ``stride`` grid, never change a label PatchCleanser certifies; the mutation (masks built for a
    1-px patch that still claim 5 px) gives violations, so the search can fail."""
    from robust.attacks import make_attack

    x, y = digits_test.batch(index)
    n = x.shape[0]
    patches = make_attack("lavan", area=0.02, steps=30, seed=0)(resnet, x, y).extra["patch"][:, None]
    if plain:
        patches = torch.cat([patches, torch.stack([torch.zeros(3, 5, 5), torch.ones(3, 5, 5)]).expand(n, -1, -1, -1,
                                                                                                     -1)], 1)
    defended = PatchCleanser(resnet, area=0.02, k=k)
    label = defended(x).argmax(1)
    assert int(defended.certify(x, label).sum()) > 0
    assert int(violations(defended, x, label, patches, stride=stride).sum()) == 0
    weak = mutated(PatchCleanser(resnet, area=0.02, k=k), 1)
    assert int(violations(weak, x, weak(x).argmax(1), patches[:, :1], stride=stride).sum()) > 0


class WhiteSeen(torch.nn.Module):
    """Class 1 when any pixel is white, else class 0: a model any visible corner of a white patch flips."""

    def forward(self, x):
        seen = (x.amin(1).flatten(1).amax(1) - 0.99) * 100
        return torch.stack([-seen, seen], 1)


def test_the_search_finds_every_violation_of_a_too_small_mask_set_and_none_of_the_real_one():
    """Against a model that a single visible white pixel flips, a white 5-px patch at each of the 12 x 12 places:
    the real masks hide it whole under one mask, so a certified image holds everywhere; masks built for a 1-px patch
    leave windows no mask hides whole, and the search finds them."""
    from torch import nn

    from robust.models import Backbone

    net = nn.Sequential(nn.Conv2d(3, 3, 1), WhiteSeen())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3)[:, :, None, None])
        net[0].bias.zero_()
    model = Backbone(net, name="white-seen", input_size=(3, 16, 16))
    x = torch.rand(2, 3, 16, 16) * 0.9  # no white pixel: class 0
    white = torch.ones(1, 3, 5, 5)
    defended = PatchCleanser(model, area=0.1, k=3)
    assert defended.patch == 5
    assert defended.certify(x, torch.zeros(2, dtype=torch.long)).all()
    assert violations(defended, x, torch.zeros(2, dtype=torch.long), white).tolist() == [0, 0]
    weak = mutated(PatchCleanser(model, area=0.1, k=3), 1)
    found = violations(weak, x, torch.zeros(2, dtype=torch.long), white)
    assert weak.certify(x, torch.zeros(2, dtype=torch.long)).all() and (found > 0).all()


@pytest.mark.slow
def test_no_certified_image_is_flipped_by_a_patch_on_a_grid_and_a_too_small_mask_set_is(resnet, digits_test):
    """On the zoo CNN: four test images that certify at k = 3 (found once; the test checks that they still do) and
    two that do not, on a 4-px grid."""
    check_invariant(resnet, digits_test, torch.tensor([0, 1, 22, 56, 68, 85]), k=3, stride=4, plain=False)


@pytest.mark.slow
def test_no_certified_image_is_flipped_by_a_patch_at_any_place(resnet, digits_test):
    """The certificate's whole claim on 64 test images: every place (stride 1), three patches per image."""
    check_invariant(resnet, digits_test, torch.arange(64), k=4, stride=1, plain=True)


def test_the_search_refuses_patches_larger_than_the_certificate(resnet):
    defended = PatchCleanser(resnet, area=0.02, k=3)
    with pytest.raises(InputError, match=r"expected Q x 3 x p x p or 2 x Q x 3 x p x p with p <= 5"):
        violations(defended, torch.rand(2, 3, 32, 32), torch.zeros(2, dtype=torch.long), torch.rand(1, 3, 6, 6))


def test_certified_accuracy_is_a_curve_of_the_defences_certificates_over_areas(resnet, digits_test):
    from robust.defenses import CertifiedAccuracy
    from robust.evaluations import run_evaluation

    data = digits_test.subset(torch.tensor([0, 22, 56, 68]))
    x, y = data.batch(torch.arange(4))
    curve = run_evaluation("certified", resnet, data, areas=[0.01, 0.02], k=3)
    want = [PatchCleanser(resnet, area=a, k=3).certify(x, y).double().mean().item() for a in (0.01, 0.02)]
    assert curve.x == [0.01, 0.02] and curve.mean == want and curve.params["patch_sides"] == [3, 5]
    defended = load_model("defense:patchcleanser?k=6&base=zoo:digits-m/resnet", "cpu")
    assert CertifiedAccuracy(areas=[0.02], k=3)(defended, data).mean == want[1:]  # certified as its base would be
    with pytest.raises(InputError, match=r"areas=\[0.0, 0.02\] is not valid; expected patch areas in \(0, 1\)"):
        CertifiedAccuracy(areas=[0.0, 0.02])


def test_a_defended_model_is_attacked_with_its_bases_trained_artifacts(resnet):
    """The shipped generator of the base is the non-adaptive transfer attack on the defended model."""
    from robust.attacks.artifacts import artifact_for, artifact_victim
    from robust.presets import load_preset

    spec = "defense:patchcleanser?k=3&base=zoo:digits-m/resnet"
    defended = load_model(spec, "cpu")
    assert artifact_victim(spec, defended) == "zoo:digits-m/resnet"
    assert artifact_victim("zoo:digits-m/resnet", resnet) == "zoo:digits-m/resnet"
    art = artifact_for(load_preset("gan-patch-12pct"), artifact_victim(spec, defended), "w", "digits-m", 0,
                       lambda: "unused")
    assert art["source"] == "shipped" and art["name"] == "zoo:digits-m/resnet/gan-patch-12pct"


def test_lgs_darkens_dense_windows_only_and_its_gradient_is_the_bases_at_the_smoothed_image(resnet, digits_test):
    """BPDA: forward through the smoothing, backward as the identity; the model is left as it was found."""
    flat = torch.full((2, 3, 32, 32), 0.5)
    flat[0, :, 8:14, 8:14] = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(0))
    g = gradient_mask(flat, window=4, overlap=1, threshold=0.1)
    assert g.shape == (2, 1, 32, 32) and g[1].eq(0).all() and g[0, :, 20:, 20:].eq(0).all() and g[0].gt(0).any()
    defended = load_model("defense:lgs?window=4&overlap=1&threshold=0.1&smoothing=2.3&base=zoo:digits-m/resnet", "cpu")
    assert isinstance(defended, LocalGradientSmoothing) and defended.undefended.spec == "zoo:digits-m/resnet"
    assert defended.spec == "defense:lgs?window=4&overlap=1&threshold=0.1&smoothing=2.3&base=zoo:digits-m/resnet"
    x, _ = digits_test.batch(torch.arange(4))
    smoothed = defended.smooth(x)
    assert torch.equal(defended(x), resnet(smoothed)) and not torch.equal(smoothed, x)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(defended(x)[:, 0].sum(), x)
    at = smoothed.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(resnet(at)[:, 0].sum(), at)
    assert torch.allclose(grad, want) and all(p.grad is None for p in resnet.parameters()) and not resnet.training
    with pytest.raises(InputError, match=r"overlap=4 is not valid; expected an integer in \[0, window - 1 = 3\]"):
        LocalGradientSmoothing(resnet, window=4, overlap=4)
    assert LocalGradientSmoothing(resnet, window=4).overlap == 1  # a third of a window smaller than the paper's


def test_a_non_adaptive_attack_is_crafted_on_the_base_and_scored_on_the_defence(resnet, digits_test):
    from robust.attacks import make_attack

    x, y = digits_test.batch(torch.arange(6))
    defended = LocalGradientSmoothing(resnet, window=4, overlap=1, threshold=0.1)
    attack = lambda adaptive: make_attack("lavan-12pct", area=0.05, steps=3, adaptive=adaptive)
    on_base = attack(True)(resnet, x, y).x_adv
    assert torch.equal(attack(False)(defended, x, y).x_adv, on_base)  # crafted on the base
    assert not torch.equal(attack(True)(defended, x, y).x_adv, on_base)  # through the defence
    with pytest.raises(InputError, match="adaptive='no' is not valid; expected true or false"):
        make_attack("lavan-12pct", adaptive="no")


def test_the_defences_section_counts_the_worst_case_the_non_adaptive_one_and_certificate_violations():
    """From the store's per-image records alone: robust under every attack, under the on-base ones, violations."""
    from robust.leaderboard.defences import defence_rows
    from robust.leaderboard.rows import EvaluationRow
    from robust.runner import parse_spec

    pc = "defense:patchcleanser?area=0.02&k=4&base=zoo:digits-m/resnet"
    spec = parse_spec({"dataset": "digits-m", "models": [{"spec": "zoo:digits-m/resnet", "name": "r"},
                                                         {"spec": pc, "name": "r+pc"}],
                       "attacks": [{"preset": "lavan-12pct", "name": "a", "params": {"area": 0.02}},
                                   {"preset": "lavan-12pct", "name": "b",
                                    "params": {"area": 0.02, "adaptive": False}}],
                       "evaluations": [{"evaluation": "certified", "name": "cert",
                                        "params": {"areas": [0.02], "k": 4}}]})

    def cell(model, task, clean, adv, certified=None):
        per_image = {"classes": 10, "y": [1, 2, 3, 4], "clean": clean, "adv": adv, "target": [0, 0, 0, 0],
                     **({"certified": certified} if certified else {})}
        return {"kind": "attack", "status": "done", "model": model, "task": task, "seed": 0,
                "result": {"per_image": per_image, "inference": {"forward": 20.0 if "+" in model else 1.0,
                                                                 "seconds": 0.01}}}

    cells = [cell("r", "a", [1, 2, 3, 4], [0, 2, 0, 4]), cell("r", "b", [1, 2, 3, 4], [0, 2, 3, 0]),
             cell("r+pc", "a", [1, 2, 3, 0], [1, 0, 3, 0], [True, False, True, False]),
             cell("r+pc", "b", [1, 2, 3, 0], [1, 2, 0, 0], [True, True, True, False])]
    cert = EvaluationRow(name="r", model="zoo:digits-m/resnet", dataset="digits-m", evaluation="cert",
                         method="certified", description="", x=[0.02], mean=[0.25], std=[0.0], area=0.0, n=4,
                         curve_seeds=1, xlabel="", ylabel="", lower_is_better=False, seeds=[0], area_interval=None)
    (row,) = defence_rows(spec, cells, [cert])  # one area
    assert (row.name, row.defence, row.base, row.options, row.area) == ("r+pc", "patchcleanser", "r",
                                                                         {"area": 0.02, "k": 4}, 0.02)
    assert (row.clean.hits, row.robust.hits, row.nonadaptive.hits, row.nonadaptive_attacks) == (3, 1, 2, ["b"])
    assert (row.base_clean.hits, row.base_robust.hits, row.certified.hits, row.certified.n) == (4, 1, 1, 4)
    assert (row.violations, row.checked, row.forward, row.base_forward) == (1, 5, 20.0, 1.0)  # image 3 under b
