import json

import pytest
import torch

from robust.attacks import GanPatch
from robust.attacks.gan_networks import Generator
from robust.data import load_dataset
from robust.models import load_model
from robust.placement import context_side, crop

TINY = {"width": 8, "depth": 2, "embed": 8}


@pytest.fixture(scope="module")
def small_train():
    full = load_dataset("digits-m", "train")
    idx = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))[:768]
    return full.subset(idx)


@pytest.fixture(scope="module")
def batch():
    return load_dataset("digits-m", "test").batch(slice(0, 64))


@pytest.fixture(scope="module")
def fitted(resnet, small_train):
    return GanPatch(seed=0, **TINY).fit(resnet, small_train, epochs=6, batch_size=64, lr=5e-3)


def test_generator_shapes_and_range():
    g = Generator(10, width=4, depth=2, embed=4, context=18)
    out = g(torch.rand(5, 3, 18, 18), torch.rand(5, 3, 18, 18), torch.arange(5))
    out = out.detach()
    assert out.shape == (5, 3, 18, 18) and float(out.min()) >= 0 and float(out.max()) <= 1
    assert context_side(9, (32, 32)) == 18 and context_side(20, (32, 32)) == 32


def test_fit_learns_targeted_patches_that_beat_noise(fitted, resnet, batch, tcs_and_noise_tcs):
    x, y = batch
    history = fitted.history
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["train_tcs"] > history[0]["train_tcs"]
    res = fitted(resnet, x, y)
    tcs, control = tcs_and_noise_tcs(resnet, x, y, res)
    assert tcs >= control + 0.1
    assert torch.equal(crop(res.x_adv, res.boxes), res.extra["patch"])
    assert bool((res.target != y).all())


def test_refinement_lowers_the_loss_from_the_generators_patch(fitted, resnet, batch, tmp_path):
    from robust.attacks.base import attack_loss

    x, y = batch
    t = (y + 1) % 10
    plain = fitted(resnet, x, y, t)
    path = tmp_path / "gan.safetensors"
    fitted.save(path)
    # refined with LaVAN's optimiser on the refinement's own loss: the loss the generator was trained with (its
    # checkpoint's record) does not choose it
    refiner = GanPatch.load(path, refine=5)
    assert (refiner.loss, refiner.refine_loss, refiner.refine_optimizer, refiner.refine_step) == ("ce", "ce", "adam",
                                                                                                  0.1)
    assert GanPatch(loss="cw").refine_loss == "ce" and GanPatch(refine_loss="cw").loss == "ce"
    refined = refiner(resnet, x, y, t)
    assert torch.equal(refined.boxes, plain.boxes)
    with torch.no_grad():
        before = attack_loss(resnet(plain.x_adv), y, t, "cw")
        after = attack_loss(resnet(refined.x_adv), y, t, "cw")
    assert after.mean() < before.mean() and bool((after <= before + 1e-4).all())  # each image keeps its best patch


def test_save_load_round_trip_and_checks(fitted, resnet, batch, tmp_path):
    path = tmp_path / "gan.safetensors"
    fitted.save(path)
    cfg = json.loads(path.with_suffix(".safetensors.json").read_text())
    assert cfg["num_classes"] == 10 and cfg["patch_side"] == 9 and len(cfg["history"]) == 6
    again = GanPatch.load(path, num_classes=10, image_size=(3, 32, 32))
    x, y = batch
    t = (y + 3) % 10
    assert torch.equal(again(resnet, x, y, t).x_adv, fitted(resnet, x, y, t).x_adv)
    assert GanPatch.load(path, refine=2, placement="random").refine == 2
    with pytest.raises(ValueError, match="trained for 10 classes; expected 100"):
        GanPatch.load(path, num_classes=100)
    with pytest.raises(ValueError, match=r"trained on \(3, 32, 32\) images; expected \(3, 64, 64\)"):
        GanPatch.load(path, image_size=(3, 64, 64))
    with pytest.raises(ValueError, match=r"\['area'\] are fixed by the checkpoint"):
        GanPatch.load(path, area=0.12)
    with pytest.raises(ValueError, match="does not exist"):
        GanPatch.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match=r"trained on \(3, 32, 32\) images; x has \(3, 40, 40\)"):
        again(resnet, torch.rand(2, 3, 40, 40), torch.tensor([0, 1]))


def test_a_generator_can_see_the_whole_image_and_older_records_saw_twice_the_window(fitted, resnet, batch, small_train,
                                                                                     tmp_path):
    x, y = batch
    wide = GanPatch(seed=0, context=4, **TINY).fit(resnet, small_train.subset(slice(0, 16)), steps=1, batch_size=16)
    sides = []
    wide.generator_net.stem.register_forward_hook(lambda m, args, out: sides.append(args[0].shape[-1]))
    path = tmp_path / "wide.safetensors"
    wide.save(path)
    again = GanPatch.load(path)
    assert again.context == 4 and torch.equal(again(resnet, x, y).x_adv, wide(resnet, x, y).x_adv)
    assert sides == [32]  # 4 x the 9 px window, kept inside the 32 px image: the whole image
    with pytest.raises(ValueError, match=r"\['context'\] are fixed by the checkpoint"):
        GanPatch.load(path, context=2)
    # a checkpoint saved before ``context`` existed saw twice the window: it loads and matches as such
    old = tmp_path / "old.safetensors"
    fitted.save(old)
    cfg = json.loads(old.with_suffix(".safetensors.json").read_text())
    del cfg["context"]
    old.with_suffix(".safetensors.json").write_text(json.dumps(cfg))
    assert GanPatch.load(old).context == 2 and fitted.matches(cfg) and not wide.matches(cfg)
    # and a resume file written before it continues
    part, resume = small_train.subset(slice(0, 16)), tmp_path / "old.resume.pt"
    options = {"batch_size": 16, "log_every": 1, "lr_schedule": "constant", "resume": resume}
    GanPatch(seed=0, **TINY).fit(resnet, part, steps=1, **options)
    state = torch.load(resume, weights_only=True)
    state["config"] = json.dumps({k: v for k, v in json.loads(state["config"]).items() if k != "context"})
    torch.save(state, resume)
    assert [h["step"] for h in GanPatch(seed=0, **TINY).fit(resnet, part, steps=2, **options).history] == [1, 2]
    for bad in (0.5, float("nan"), "whole"):
        with pytest.raises(ValueError, match="context="):
            GanPatch(context=bad)


def test_a_generator_can_work_at_a_canvas_of_its_own_and_older_records_worked_at_the_context(fitted, resnet, batch,
                                                                                             small_train, tmp_path):
    x, y = batch
    fine = GanPatch(seed=0, canvas=32, **TINY).fit(resnet, small_train.subset(slice(0, 16)), steps=1, batch_size=16)
    sides = []
    fine.generator_net.stem.register_forward_hook(lambda m, args, out: sides.append(args[0].shape[-1]))
    result = fine(resnet, x, y)
    assert sides == [32] and result.extra["patch"].shape[-1] == 9  # the 18-px context at 32 px, the patch at 9
    assert fine.generator_net.grid == 32 and fitted.generator_net.grid == 18  # the template follows the canvas
    path = tmp_path / "fine.safetensors"
    fine.save(path)
    assert torch.equal(GanPatch.load(path)(resnet, x, y).x_adv, result.x_adv)
    with pytest.raises(ValueError, match=r"\['canvas'\] are fixed by the checkpoint"):
        GanPatch.load(path, canvas=None)
    cfg = json.loads(fitted.save(tmp_path / "old.safetensors") or (tmp_path / "old.safetensors.json").read_text())
    del cfg["canvas"]  # saved before ``canvas`` existed: at the context's own side
    (tmp_path / "old.safetensors.json").write_text(json.dumps(cfg))
    assert GanPatch.load(tmp_path / "old.safetensors").canvas is None and fitted.matches(cfg) and not fine.matches(cfg)
    for bad in (3, 2.5, "32", True):
        with pytest.raises(ValueError, match="canvas="):
            GanPatch(canvas=bad)


def test_a_generator_told_the_victims_view_conditions_on_it_and_records_it(fitted, resnet, batch, small_train,
                                                                           tmp_path):
    """``view="logits"``: the victim's log-probabilities on the clean image join the target's embedding (one more
    victim forward per batch); the option defines the generator (recorded, refused as a load override), and a record
    from before it is a generator without a view."""
    x, y = batch
    told = GanPatch(seed=0, view="logits", **TINY).fit(resnet, small_train.subset(slice(0, 16)), steps=1,
                                                       batch_size=16)
    assert told.generator_net.view.in_features == 10 and fitted.generator_net.view is None
    seen = []
    told.generator_net.view.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    result = told(resnet, x, y)
    with torch.no_grad():
        assert torch.allclose(seen[0], resnet(x).log_softmax(1), atol=1e-5)  # the clean image's, per image
    path = tmp_path / "told.safetensors"
    told.save(path)
    assert torch.equal(GanPatch.load(path)(resnet, x, y).x_adv, result.x_adv)
    with pytest.raises(ValueError, match=r"\['view'\] are fixed by the checkpoint"):
        GanPatch.load(path, view="none")
    cfg = json.loads(fitted.save(tmp_path / "old.safetensors") or (tmp_path / "old.safetensors.json").read_text())
    del cfg["view"]  # saved before ``view`` existed
    (tmp_path / "old.safetensors.json").write_text(json.dumps(cfg))
    assert GanPatch.load(tmp_path / "old.safetensors").view == "none" and fitted.matches(cfg)
    assert not told.matches(cfg)
    with pytest.raises(ValueError, match="view='pixels' is not valid"):
        GanPatch(view="pixels")


def test_resume_continues_exactly(resnet, small_train, tmp_path):
    part = small_train.subset(slice(0, 128))
    straight = GanPatch(seed=1, **TINY).fit(resnet, part, epochs=2, batch_size=64)
    resume = tmp_path / "gan.resume.pt"
    GanPatch(seed=1, **TINY).fit(resnet, part, epochs=1, batch_size=64, resume=resume)
    resumed = GanPatch(seed=1, **TINY).fit(resnet, part, epochs=2, batch_size=64, resume=resume)
    untimed = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    assert untimed(resumed.history) == untimed(straight.history)
    for a, b in zip(resumed.generator_net.state_dict().values(), straight.generator_net.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="written for another configuration"):
        GanPatch(seed=1, **TINY).fit(resnet, part, epochs=2, batch_size=32, resume=resume)


def test_distillation_pulls_towards_the_teachers_patches_and_resumes_without_recomputing_them(
        resnet, small_train, tmp_path, monkeypatch):
    part = small_train.subset(slice(0, 128))
    options = {"epochs": 2, "batch_size": 64, "distill": 1.0, "teacher_steps": 3, "teacher_samples": 40}
    straight = GanPatch(seed=2, **TINY).fit(resnet, part, **options)
    assert [set(h) >= {"distill", "train_tcs"} for h in straight.history] == [True, True]
    assert straight.training["distill"] == 1.0 and straight.training["teacher_samples"] == 40
    resume = tmp_path / "gan.resume.pt"
    GanPatch(seed=2, **TINY).fit(resnet, part, **{**options, "epochs": 1}, resume=resume)
    teacher = torch.load(resume, weights_only=True)["teacher"]
    assert int((teacher["slot"] >= 0).sum()) == 40 and teacher["patch"].shape == (40, 3, 9, 9)  # 8 % of 32 x 32
    assert teacher["slot"][teacher["slot"] >= 0].tolist() == list(range(40))  # a seeded spread, in set order

    def recompute(*args, **kwargs):
        raise AssertionError("the teacher's patches were recomputed on resume")

    monkeypatch.setattr(GanPatch, "_teacher", recompute)
    resumed = GanPatch(seed=2, **TINY).fit(resnet, part, **options, resume=resume)
    untimed = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    assert untimed(resumed.history) == untimed(straight.history)
    # a checkpoint recorded before distillation existed was trained without it
    assert straight.matches(straight.config(), options)
    newer = ("distill", "teacher_steps", "teacher_samples", "teacher_margin")
    old = {**straight.config(), "training": {k: v for k, v in straight.training.items() if k not in newer}}
    assert straight.matches(old, {"epochs": 2, "batch_size": 64}) and not straight.matches(old, options)
    refined = GanPatch(seed=2, **TINY).fit(resnet, part, epochs=1, batch_size=64, distill=1.0, distill_refine=2)
    assert refined.history[0]["distill"] > 0 and refined.training["distill_refine"] == 2
    assert "teacher_samples" not in refined.training  # no cached teacher: its own refined patch is the target
    with pytest.raises(ValueError, match="distill=-1"):
        GanPatch(**TINY).fit(resnet, part, distill=-1)
    with pytest.raises(ValueError, match="distill_refine=-1"):
        GanPatch(**TINY).fit(resnet, part, distill=1, distill_refine=-1)
    with pytest.raises(ValueError, match="teacher_samples=0"):
        GanPatch(**TINY).fit(resnet, part, distill=1, teacher_samples=0)


def test_bad_input(fitted, resnet, batch, small_train):
    x, y = batch
    with pytest.raises(ValueError, match="no trained generator"):
        GanPatch()(resnet, x, y)
    for params, match in (({"refine": -1}, "refine=-1"), ({"loss": "square"}, "loss='square'"),
                          ({"width": 0}, "width=0"), ({"lambda_gan": -1}, "lambda_gan=-1"),
                          ({"refine_optimizer": "sgd"}, "refine_optimizer='sgd'"),
                          ({"precision": "fp8"}, "precision='fp8'")):
        with pytest.raises(ValueError, match=match):
            GanPatch(**params)
    with pytest.raises(ValueError, match="epochs=0"):
        GanPatch(**TINY).fit(resnet, small_train, epochs=0)
    with pytest.raises(ValueError, match="precision='fp64'"):
        GanPatch(**TINY).fit(resnet, small_train, precision="fp64")
    with pytest.raises(TypeError, match="victims must be"):
        GanPatch(**TINY).fit([], small_train)
    with pytest.raises(ValueError, match="target contains class 10"):
        fitted(resnet, x[:2], y[:2], torch.tensor([10, 0]))


def test_a_schedule_in_steps_on_a_stream_resumes_exactly_and_scores_val(resnet, tmp_path):
    fit = load_dataset("digits-m", "fit")
    val = load_dataset("digits-m", "val").subset(slice(0, 40))
    options = {"stream": True, "batch_size": 16, "log_every": 2, "lr_schedule": "constant", "monitor": val}
    straight = GanPatch(seed=3, **TINY).fit(resnet, fit, steps=4, **options)
    assert [h["step"] for h in straight.history] == [2, 4]
    assert all(0 <= h["val_tcs"] <= 1 and 0 <= h["train_tcs"] <= 1 for h in straight.history)
    assert straight.training["steps"] == 4 and straight.training["stream"] is True
    assert straight.training["monitor"] == "digits-m/val" and "epochs" not in straight.training
    resume = tmp_path / "gan.resume.pt"
    GanPatch(seed=3, **TINY).fit(resnet, fit, steps=2, **options, resume=resume)
    resumed = GanPatch(seed=3, **TINY).fit(resnet, fit, steps=4, **options, resume=resume)  # more steps: continued
    untimed = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    assert untimed(resumed.history) == untimed(straight.history)
    for a, b in zip(resumed.generator_net.state_dict().values(), straight.generator_net.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="written for another configuration"):  # an epoch run is another one
        GanPatch(seed=3, **TINY).fit(resnet, fit, epochs=4, batch_size=16, resume=resume)
    stored = GanPatch(seed=3, **TINY).fit(resnet, fit.subset(slice(0, 64)), steps=2, batch_size=16, log_every=1)
    assert [h["step"] for h in stored.history] == [1, 2] and stored.training["stream"] is False


def test_a_presets_recipe_is_fits_default_and_a_calls_option_beats_it(resnet):
    """``make_attack(PRESET)`` carries the preset's ``[train]`` table as ``recipe``; ``fit`` takes what a call leaves
    out from it (not from its own keyword defaults: 30 epochs over stored images), and a call's option wins."""
    from robust.attacks import make_attack
    from robust.presets import load_preset

    whole = make_attack("gan-patch-whole-12pct")
    assert whole.recipe == load_preset("gan-patch-whole-12pct").train and whole.recipe["stream"] is True
    assert make_attack("gan-patch").recipe == {} and make_attack("lavan-12pct").__dict__.get("recipe") is None
    fit = load_dataset("digits-m", "fit").subset(slice(0, 64))
    atk = GanPatch(seed=0, **TINY)
    atk.recipe = {"steps": 2, "batch_size": 8, "log_every": 1, "stream": False}
    assert [h["step"] for h in atk.fit(resnet, fit).history] == [1, 2] and atk.training["steps"] == 2
    assert [h["step"] for h in atk.fit(resnet, fit, steps=3).history] == [1, 2, 3]  # the call's option wins
    assert atk.recipe["steps"] == 2  # and the recipe is left as it was


@pytest.mark.slow  # three short trainings compared bit for bit: 13 s on 2 cores
def test_a_cooldown_branches_a_constant_run_and_anneals_it_exactly(resnet, tmp_path):
    """A constant-rate run's resume file continues into a cooldown (linear decay over the last K steps) bit for bit
    as if the decayed schedule had been asked from the start; a cooled run cannot be extended, since its last steps
    ran at rates the longer schedule does not have."""
    import shutil

    fit = load_dataset("digits-m", "fit")
    options = {"stream": True, "batch_size": 8, "log_every": 1, "lr_schedule": "constant"}
    straight = GanPatch(seed=5, **TINY).fit(resnet, fit, steps=4, cooldown=2, **options)
    assert straight.training["cooldown"] == 2
    constant, cooled = tmp_path / "constant.pt", tmp_path / "cooled.pt"
    GanPatch(seed=5, **TINY).fit(resnet, fit, steps=2, **options, resume=constant)
    shutil.copy(constant, cooled)
    chunk = GanPatch(seed=5, **TINY).fit(resnet, fit, steps=4, cooldown=2, **options, resume=cooled, stop=3)
    assert chunk.history[-1]["step"] == 3
    branched = GanPatch(seed=5, **TINY).fit(resnet, fit, steps=4, cooldown=2, **options, resume=cooled)
    for a, b in zip(branched.generator_net.state_dict().values(), straight.generator_net.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    undecayed = GanPatch(seed=5, **TINY).fit(resnet, fit, steps=4, **options, resume=constant)  # goes on at 1e-3
    assert not torch.equal(undecayed.generator_net.head.weight, branched.generator_net.head.weight)
    with pytest.raises(ValueError, match="stopped at step 4 of steps=4, cooldown=2"):
        GanPatch(seed=5, **TINY).fit(resnet, fit, steps=6, cooldown=2, **options, resume=cooled)
    with pytest.raises(ValueError, match="stopped at step 4 of steps=4, cooldown=0"):  # past the decay's start
        GanPatch(seed=5, **TINY).fit(resnet, fit, steps=5, cooldown=2, **options, resume=constant)


@pytest.mark.slow  # three short trainings: 9-12 s on 2 cores
def test_a_warm_start_begins_at_the_given_generator_and_the_hinge_loss_trains(resnet, tmp_path):
    """``init`` replaces the seeded initialisation (its digest recorded, so a resume file only continues the same
    start); ``loss="hinge"`` is the CW margin clamped at ``HINGE``."""
    from robust.attacks.base import HINGE
    from robust.models.checkpoint import state_digest

    fit = load_dataset("digits-m", "fit")
    options = {"stream": True, "batch_size": 8, "log_every": 1, "lr_schedule": "constant"}
    donor = GanPatch(seed=1, **TINY).fit(resnet, fit, steps=1, **options).generator_net.state_dict()
    resume = tmp_path / "warm.pt"
    warm = GanPatch(seed=2, loss="hinge", **TINY).fit(resnet, fit, steps=1, lr=1e-12, template_lr=1e-12,
                                                      init=donor, **options, resume=resume)
    assert warm.training["init"] == state_digest(donor)
    for name, value in warm.generator_net.state_dict().items():  # seed 2's own start would differ from seed 1's
        assert torch.allclose(value, donor[name], atol=1e-6), name
    assert all(h["loss_adv"] >= -HINGE for h in warm.history)
    with pytest.raises(ValueError, match="written for another configuration"):  # another start
        GanPatch(seed=2, loss="hinge", **TINY).fit(resnet, fit, steps=2, lr=1e-12, template_lr=1e-12, **options,
                                                   resume=resume)
    with pytest.raises(ValueError, match="checkpoint init does not match"):
        GanPatch(seed=2, **{**TINY, "width": 4}).fit(resnet, fit, steps=1, init=donor, **options)
    # a generator that sees the whole image starts from one that saw twice the window: its template is resampled
    whole = GanPatch(seed=2, context=4, **TINY).fit(resnet, fit, steps=1, lr=1e-12, template_lr=1e-12, init=donor,
                                                    **options).generator_net
    template = whole.template.weight.detach()
    assert whole.grid == 32 and template.shape == (10, 3 * 32 * 32)
    assert torch.allclose(template, whole.adapt(donor)["template.weight"], atol=1e-6)
    assert torch.allclose(template.view(10, 3, 32, 32).mean((2, 3)), donor["template.weight"].view(10, 3, 18, 18)
                          .mean((2, 3)), atol=0.02)  # the same template, drawn at the larger grid
    assert torch.allclose(whole.stem.conv.weight, donor["stem.conv.weight"], atol=1e-6)
    with pytest.raises(ValueError, match="loss='margin' is not valid"):
        GanPatch(loss="margin")


def test_bad_schedule_options(resnet, small_train):
    fit = load_dataset("digits-m", "fit")
    for options, error, match in (
            ({"stream": True}, ValueError, "stream=True needs steps=N"),
            ({"steps": 2, "stream": True, "train_samples": 10}, ValueError, "neither train_samples"),
            ({"steps": 0}, ValueError, "steps=0"),
            ({"steps": 2, "log_every": 0}, ValueError, "log_every=0"),
            ({"steps": 2, "lr_schedule": "linear"}, ValueError, "lr_schedule='linear'"),
            ({"steps": 2, "stream": "yes"}, ValueError, "stream='yes'"),
            ({"steps": 2, "cooldown": -1}, ValueError, "cooldown=-1"),
            ({"steps": 2, "cooldown": 1}, ValueError, "expected steps=N >= cooldown and lr_schedule='constant'"),
            ({"steps": 2, "cooldown": 3, "lr_schedule": "constant"}, ValueError, "cooldown=3"),
            ({"cooldown": 1, "lr_schedule": "constant"}, ValueError, "cooldown=1"),
            ({"steps": 2, "stop": 3}, ValueError, "stop=3 is not valid with steps=2"),
            ({"stop": 1}, ValueError, "stop=1 is not valid with steps=None"),
            ({"steps": 2, "monitor": "val"}, TypeError, "monitor must be an ImageSet")):
        with pytest.raises(error, match=match):
            GanPatch(**TINY).fit(resnet, fit, **options)
    with pytest.raises(ValueError, match="data is 'digits-m' split 'test'"):
        GanPatch(**TINY).fit(resnet, load_dataset("digits-m", "test"), steps=2, stream=True)


def test_a_stream_of_photo_crops_trains_a_generator_for_a_named_target_set(resnet, tmp_path):
    """imagenet-crops' train split streams fresh crops (robust.data.photo_stream), labelled by the victim; the
    generator learns the attack's own target protocol (N8 here), recorded in its training, with one class
    embedding per N8 class, and says so when asked for another target."""
    from robust.model_data import decision_labels

    net = load_model("timm:resnet18?pretrained=false", "cpu")
    data = decision_labels(net, load_dataset("imagenet-crops", "train", image_size=32).subset(slice(0, 8)))
    gan = GanPatch(target="n8", **TINY).fit(net, data, steps=2, stream=True, batch_size=4, log_every=1)
    assert [h["step"] for h in gan.history] == [1, 2] and gan.training["target"] == "n8"
    assert gan.training["stream"] is True and gan.generator_net.embed.num_embeddings == 8  # N8's classes only
    x = load_dataset("imagenet-crops", "test", image_size=32).images[:2].float() / 255
    res = gan(net, x, torch.tensor([1, 2]))
    assert set(res.target.tolist()) <= {150, 426, 843, 715, 952, 507, 590, 62}
    with pytest.raises(ValueError, match=r"target protocol 'n8' .*targets \[3\] have no patch"):
        gan(net, x[:1], torch.tensor([1]), target=torch.tensor([3]))
    gan.save(tmp_path / "n8.safetensors")
    again = GanPatch.load(tmp_path / "n8.safetensors", target="n8")
    assert torch.equal(again(net, x, torch.tensor([1, 2])).x_adv, res.x_adv)
    with pytest.raises(ValueError, match="names ImageNet-1k classes"):  # the set's classes, not random ones
        GanPatch(target="n8", **TINY).fit(resnet, load_dataset("digits-m", "fit"), steps=1, stream=True)
