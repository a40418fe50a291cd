"""The registry: what each attack and evaluation is, declared beside it. A trained attack and a lower-is-better
curve written in one module each (plus a preset) reach the CLI, presets, a board and robust.testing."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from robust import registry

TOY_ATTACK = '''
import torch

from robust.attacks import AttackResult, TrainedPatchAttack
from robust.placement import paste
from robust.registry import register_attack


@register_attack
class ToyPatch(TrainedPatchAttack):
    """Toy: one flat patch per target class, its shade learned by counting."""

    name = "toy-patch"
    targeted = True
    training_params = frozenset({"tint"})

    def __init__(self, *, tint: float = 0.5, **patch_params):
        super().__init__(**patch_params)
        self.tint, self.patches = tint, None

    def state(self):
        return None if self.patches is None else {"patches": self.patches}

    def set_state(self, state, where):
        self.patches = state["patches"]

    def fit(self, victims, data, *, rounds: int = 1, train_samples=None, progress=False):
        victims, data = self._begin_fit(victims, data, train_samples, {"rounds": rounds})
        side = self.side(torch.empty(1, *self.image_size))
        shade = torch.linspace(0, self.tint, self.num_classes)[:, None, None, None]
        self.patches = shade.expand(self.num_classes, self.image_size[0], side, side).contiguous()
        self.history = [{"round": r + 1, "shade": float(shade.mean())} for r in range(rounds)]
        return self

    def run(self, model, x, y, target, draws):
        boxes, side = self.locate(model, x, draws), self.side(x)
        patch = self.patches.to(x.device)[target]
        return AttackResult(paste(x, patch, boxes, self.mask(side, x.device)), target, boxes)
'''

TOY_CURVE = '''
import torch

from robust.evaluations import Evaluation, Sweep
from robust.registry import register_evaluation


@register_evaluation
class ToyCurve(Evaluation):
    """Toy: the error rate under a grey wash of the image."""

    name = "toy-curve"
    xlabel, ylabel, higher_is_better = "wash", "error", False

    def __init__(self, *, strength: float = 0.5, **common):
        super().__init__(**common)
        self.strength = strength

    def plan(self, model):
        return Sweep(model, [0.0, self.strength], [0.0, self.strength], {"strength": self.strength})

    def parameters(self, sweep, images, y, knob, draws, context):
        return {"wash": torch.full((images.shape[0], 1, 1, 1), knob, device=images.device)}

    def measure(self, sweep, images, y, params):
        washed = images * (1 - params["wash"]) + 0.5 * params["wash"]
        return sweep.model.logits(washed).argmax(1) != y, torch.ones_like(y, dtype=torch.bool)
'''

SCRIPT = '''
import json, sys
from robust.leaderboard import render
from robust.presets import list_presets
from robust.runner import run_board
from robust.testing import assert_auc_at_most, assert_tcs_at_most, measure

out = sys.argv[1]
report = run_board(sys.argv[2], out, device="cpu")
render(sys.argv[2], out)
curve = measure("zoo:digits-m/mixer", "toy-curve", samples=40, device="cpu", store=out + "-store")
assert_auc_at_most(curve, 0.9)
attack = measure("zoo:digits-m/mixer", "toy-trained", samples=40, device="cpu", store=out + "-store")
assert_tcs_at_most(attack, 1.0)
print(json.dumps({"presets": sorted(list_presets()), "failed": report.failed, "ran": report.ran}))
'''


def _env(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy_attack.py").write_text(TOY_ATTACK)
    (tmp_path / "plugins" / "toy_curve.py").write_text(TOY_CURVE)
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "toy-trained.toml").write_text('description = "toy patch"\nattack = "toy-patch"\n'
                                              '[params]\narea = 0.08\n[train]\nrounds = 2\n')
    (presets / "toy-curve.toml").write_text('description = "toy error"\nevaluation = "toy-curve"\n'
                                          '[params]\nstrength = 0.8\nseeds = 1\n')
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "plugins"), os.environ.get("PYTHONPATH", "")]),
            "ROBUST_PLUGINS": "toy_attack, toy_curve", "ROBUST_PRESETS": str(presets),
            "ROBUST_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


@pytest.mark.subprocess
@pytest.mark.slow  # five robust commands in subprocesses: 21 s on 2 cores
def test_a_plugin_attack_and_curve_reach_every_consumer(tmp_path):
    env = _env(tmp_path)
    help_text = subprocess.run([sys.executable, "-m", "robust", "attack", "train", "--help"], env=env,
                               capture_output=True, text=True, timeout=300, check=True).stdout
    flat = " ".join(help_text.replace("│", " ").split())
    assert "toy-patch: rounds, train_samples" in flat and "gan-patch, toy-patch, universal-patch" in flat
    ran = subprocess.run([sys.executable, "-m", "robust", "occlusion", "run", "toy-curve", "--model",
                          "zoo:digits-m/mixer", "--samples", "20", "--seeds", "2", "--param", "strength=0.9", "--json",
                          "--plot",
                          str(tmp_path / "toy.png")], env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    out = json.loads(ran.stdout)
    assert out["method"] == "toy-curve" and out["x"] == [0.0, 0.9] and out["seeds"] == 2
    assert (tmp_path / "toy.png").exists()

    spec = tmp_path / "toy.toml"
    spec.write_text(textwrap.dedent("""
        dataset = "digits-m"
        samples = 40
        models = [{ spec = "zoo:digits-m/resnet", name = "resnet" }, { spec = "zoo:digits-m/mixer", name = "mixer" }]
        attacks = ["toy-trained"]
        evaluations = ["toy-curve"]
    """))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    board = tmp_path / "board"
    res = subprocess.run([sys.executable, str(script), str(board), str(spec)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert {"toy-trained", "toy-curve", "gan-patch-12pct"} <= set(summary["presets"]) and summary["failed"] == 0

    doc = json.loads((board / "results.json").read_text())
    toy = [r for r in doc["evaluations"] if r["evaluation"] == "toy-curve"]
    areas = {r["name"]: r["area"] for r in toy}
    assert areas["resnet"] != areas["mixer"]
    md = (board / "README.md").read_text()
    section = md[md.index("## toy-curve"):]
    first, second = (line.split("|")[2].strip() for line in section.splitlines() if line.startswith("| 1 ")
                     or line.startswith("| 2 "))
    assert areas[first] < areas[second], "a lower-is-better curve ranks its lowest area first"
    assert "lower is better" in section
    assert [r["attack"] for r in doc["rows"]] == ["toy-trained", "toy-trained"]


def test_the_built_in_methods_describe_themselves():
    attacks, evaluations = registry.attacks(), registry.evaluations()
    assert {"gan-patch", "universal-patch", "lavan", "lp", "noise-patch", "natural-patch"} <= set(attacks)
    assert all(m.description for m in [*attacks.values(), *evaluations.values()])
    assert set(registry.trained()) == {"gan-patch", "universal-patch"}
    assert attacks["gan-patch"].resumable and not attacks["universal-patch"].resumable
    assert set(attacks["gan-patch"].train_options()) == {"epochs", "batch_size", "lr", "template_lr", "precision",
                                                          "train_samples", "distill", "teacher_steps",
                                                          "teacher_samples", "teacher_margin", "distill_refine",
                                                          "steps", "stream", "lr_schedule", "cooldown",
                                                          "log_every"}
    assert (attacks["gan-patch"].headline, attacks["lp"].headline, evaluations["patch-drop"].headline) == \
        ("tcs", "asr", "area")
    assert not evaluations["selectivity"].higher_is_better and evaluations["patch-drop"].higher_is_better
    # the option a frontier varies, where an attack has one; every patch attack takes a bound
    assert {k: m.steps for k, m in attacks.items() if m.steps} == {"gan-patch": "refine", "lavan": "steps",
                                                                   "lp": "steps"}
    assert all("bound" in attacks[k].params() for k in ("gan-patch", "universal-patch", "lavan", "noise-patch",
                                                        "natural-patch"))
    salient = evaluations["salient-drop"]
    assert salient.fixed == {"order": "salient"} and "order" not in salient.params()


def test_registering_a_taken_name_or_a_broken_plugin_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="'gan-patch' is already registered"):
        @registry.register_attack
        class Clash(registry.get("lavan", "attack").build):
            name = "gan-patch"
    monkeypatch.setenv("ROBUST_PLUGINS", "no_such_robust_plugin")
    monkeypatch.setattr(registry, "_loaded", [False])
    with pytest.raises(ValueError, match="robust plugin 'no_such_robust_plugin' could not be imported"):
        registry.attacks()


@pytest.mark.parametrize(("kind", "name"), [("attack", "lavan-12pct"), ("evaluation", "lavan-8pct"),
                                           ("attack", "pgd-linf-8")])
def test_a_plugin_method_named_like_a_shipped_preset_is_refused(tmp_path, monkeypatch, kind, name):
    from robust.presets import list_presets

    assert name in list_presets()  # a shipped preset's name, or the test asks nothing
    registry.attacks()  # the built-ins loaded before the plugin: the copies below hold them, and so do the originals
    module = f"clash_{kind}_{name.replace('-', '_')}"
    body = (f"from robust.attacks.controls import NoisePatch\nfrom robust.registry import register_attack\n"
            f"@register_attack\nclass Clash(NoisePatch):\n    name = {name!r}\n") if kind == "attack" else (
        f"from robust.evaluations import PatchDrop\nfrom robust.registry import register_evaluation\n"
        f"@register_evaluation\nclass Clash(PatchDrop):\n    name = {name!r}\n    variants = {{}}\n")
    (tmp_path / f"{module}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ROBUST_PLUGINS", module)
    monkeypatch.setattr(registry, "_loaded", [False])
    monkeypatch.setattr(registry, "_ATTACKS", dict(registry._ATTACKS))
    monkeypatch.setattr(registry, "_EVALUATIONS", dict(registry._EVALUATIONS))
    for _ in range(2):  # and again: the module is imported already then, the clash is still refused
        with pytest.raises(ValueError, match=f"robust plugin '{module}' registers the {kind} '{name}', the name of "
                                             "a shipped preset"):
            registry.attacks()


def test_every_built_in_evaluation_states_its_chance_level():
    from robust import registry

    chances = {name: m.chance for name, m in registry.evaluations().items()}
    assert chances and all(c in ("diagonal", "uniform") for c in chances.values()), chances
    assert chances["selectivity"] == "diagonal" and chances["patch-drop"] == "uniform"
    from robust.evaluations import Evaluation

    class Half(Evaluation):
        name, chance = "x", "half"

    with pytest.raises(ValueError, match="chance='half' is not valid"):
        registry.register_evaluation(Half)
