"""Write docs/reference/methods.md: every registered attack and evaluation with its options and defaults (from the
registry), every shipped preset (from attacks/*.toml), the keys of a board spec and the columns of a board's CSV.
The descriptions of the spec keys and columns live here; the keys and columns themselves come from the code, and a
key or column without a description fails the build, so the page cannot fall behind.

    python docs/methods_reference.py            # rewrite docs/reference/methods.md
    python docs/methods_reference.py --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

PAGE = Path(__file__).parent / "reference" / "methods.md"

SPEC_KEYS = {
    "title": "the board's title",
    "dataset": "the dataset (`load_dataset`'s names); its test split is evaluated",
    "samples": "the first N test images (default: 500, or the whole split when smaller)",
    "seeds": "the seeds of the per-image draws, e.g. `[0, 1]`; each is a cell of its own",
    "batch_size": "images per batch",
    "device": "`auto`, `cpu`, `cuda`, `cuda:1`...",
    "presets": "more folders of preset TOML files, searched before the shipped ones",
    "models": "load specs, or tables `{ spec, name, input_size }`",
    "attacks": "attack presets by name, or tables `{ preset, name, params, train, models }`",
    "evaluations": "evaluation presets by name, or tables of the same form",
    "train_missing": "train a trained attack's missing artifact (default true; false: the cell fails instead)",
    "detector": "train the realism table's detector in every patch-attack cell, about 4 s of a core each (default "
                "true; false: SSIM, PSNR, TV and hist only)",
    "heldout_detector": "also score each patch attack's realism with a detector trained on the board's other attacks",
    "notes": "a table of task name -> a note printed under that task's table",
}
MODEL_KEYS = {
    "spec": "the load spec (`zoo:digits-m/resnet`, `timm:NAME`, `file:PATH`...)",
    "name": "the name the board shows (default: the spec)",
    "input_size": "the images the model is fed, `[3, H, W]`",
}
CSV_COLUMNS = {
    "name": "the model's name on the board",
    "model": "the model's spec",
    "architecture": "the model's class and family",
    "dataset": "the dataset evaluated",
    "clean_acc": "clean accuracy over the n images",
    "attack": "the task's name (a worst-case row: `worst-case-...`)",
    "threat_model": "the task's description",
    "area": "the patch's share of the image, for patch attacks",
    "eps": "the L-p budget, for L-p attacks",
    "asr": "attack success rate over the clean-correct images",
    "asr_low": "the low end of ASR's Wilson 95 % interval",
    "asr_high": "its high end",
    "control_asr": "the highest ASR a control (a patch of noise or of another image) reaches at this area on this "
                   "model: occlusion, not attack",
    "tcs": "target-class success over the clean-correct images (targeted attacks)",
    "tcs_low": "the low end of TCS's Wilson 95 % interval",
    "tcs_high": "its high end",
    "robust_acc": "accuracy under the attack, over the n images",
    "n": "the images evaluated, seeds pooled",
    "clean_correct": "the clean-correct images: the denominator of ASR",
    "asr_all": "ASR over all n images",
    "tcs_all": "TCS over all n images",
    "skipped": "images whose target was their own class (left out of TCS only)",
    "seeds": "the seeds pooled in the row",
    "artifact": "the trained attack's artifact (a file name)",
    "labels": "`ground truth`, or `decision` (the model's own clean top-1)",
    "passes": "the victim's forward and backward passes the attack spent per image",
    "seconds": "the cells' seconds, summed over seeds",
    "ssim": "realism: SSIM of the patched window to the window it replaced (mean)",
    "psnr": "realism: PSNR of the same, in dB (mean)",
    "tv": "realism: the patched window's total variation (mean)",
    "hist": "realism: colour-histogram distance between the window and its clean surroundings (mean)",
    "detector_auc": "realism: a small CNN's AUC telling attacked context squares from clean ones",
    "heldout_auc": "realism: the AUC of a detector trained on the board's other attacks (`heldout_detector`)",
}


def _options(params: dict[str, inspect.Parameter]) -> str:
    return ", ".join(f"`{k}`" if p.default is inspect.Parameter.empty else f"`{k}={p.default!r}`"
                     for k, p in params.items()).replace("|", "\\|")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render() -> str:
    from robust import registry
    from robust.leaderboard.export import CSV_FIELDS
    from robust.presets import list_presets, load_preset
    from robust.runner import spec

    for name, described, actual in (("spec keys", SPEC_KEYS, spec.SPEC_KEYS), ("model keys", MODEL_KEYS,
                                    spec.MODEL_KEYS), ("CSV columns", CSV_COLUMNS, CSV_FIELDS)):
        if set(described) != set(actual):
            sys.exit(f"docs/methods_reference.py: describe the {name} {sorted(set(actual) - set(described))}, drop "
                     f"{sorted(set(described) - set(actual))}")
    out = ["# Attacks, evaluations, defences, presets, specs and board columns", "",
           "Generated from the registry, `attacks/*.toml` and the code (`python docs/methods_reference.py`; a test "
           "fails when this page is out of date).", "", "## Attacks", "",
           "| attack | what | headline | trained | options (defaults) |", "|---|---|---|---|---|"]
    for name, m in registry.attacks().items():
        train = f"; training: {_options(m.train_options())}" if m.trained else ""
        out.append(f"| `{name}` | {_cell(m.description)} | {m.headline.upper()} | {'yes' if m.trained else 'no'} "
                   f"| {_options(m.params())}{train} |")
    out += ["", "## Evaluations", "",
            "Each measures a curve and ranks by its normalised area; a variant is its class with some options fixed.",
            "", "| evaluation | what | y | better | options (defaults) |", "|---|---|---|---|---|"]
    for name, m in registry.evaluations().items():
        fixed = f" ({', '.join(f'{k}={v!r}' for k, v in m.fixed.items())})" if m.fixed else ""
        out.append(f"| `{name}`{fixed} | {_cell(m.description)} | {_cell(m.ylabel)} | "
                   f"{'higher' if m.higher_is_better else 'lower'} | {_options(m.params())} |")
    out += ["", "## Defences", "", "Models that wrap a model (`defense:NAME?OPTIONS&base=SPEC`; the defences guide).",
            "", "| defence | what | options (defaults) |", "|---|---|---|"]
    for name, m in registry.defenses().items():
        out.append(f"| `{name}` | {_cell(m.description)} | {_options(m.params())} |")
    out += ["", "## Presets", "", "Named attacks and evaluations (`attacks/*.toml`) that specs, suites and "
            "`robust attack run` take by name.", "", "| preset | method | parameters | what |", "|---|---|---|---|"]
    for name in list_presets():
        task = load_preset(name)
        params = ", ".join(f"`{k}={v!r}`" for k, v in task.params.items())
        out.append(f"| `{name}` | `{task.method}` | {_cell(params)} | {_cell(task.description)} |")
    out += ["", "## A board spec's keys", "", "A board spec is a TOML file (the leaderboards guide shows one).", "",
            "| key | what |", "|---|---|", *(f"| `{k}` | {v} |" for k, v in SPEC_KEYS.items()), "",
            "A model table's keys:", "", "| key | what |", "|---|---|", *(f"| `{k}` | {v} |" for k, v in
                                                                           MODEL_KEYS.items()),
            "", "## A board's CSV columns", "", "`results.csv`: one line per model and attack, then the worst-case "
            "lines; rates are fractions in [0, 1]. `results.json` holds the same rows with the intervals as pairs, "
            "the curves and the worst case.", "", "| column | what |", "|---|---|",
            *(f"| `{k}` | {CSV_COLUMNS[k]} |" for k in CSV_FIELDS), ""]
    return "\n".join(out)


if __name__ == "__main__":
    page = render()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if PAGE.read_text() == page else 1)
    PAGE.write_text(page)
