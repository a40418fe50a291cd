"""Issue 27, item 3: output explains itself. Each measure is named in words once where it is printed, targeted or
untargeted and how targets were drawn are said, Counts and Curve print readably, progress is by images (a line every
few seconds outside a terminal), and occlusion tables are percentages with the area's interval."""

from typer.testing import CliRunner

from robust.cli import app
from robust.evaluations.curve import Curve
from robust.metrics import MEANINGS, RATES, Counts, describe_targets


def test_every_rate_has_its_words():
    assert set(MEANINGS) == set(RATES) and "target class" in MEANINGS["tcs"]


def test_counts_and_curves_print_readably():
    counts = Counts(n=500, clean_correct=486, adv_correct=86, success=403, target_hit=344, success_all=414,
                    target_hit_all=352, targeted=True)
    text = str(counts)
    assert text.startswith("Counts over n=500 images, targeted: clean accuracy 97.2 % [95.4, 98.3] (486 / 500)")
    assert "TCS 70.8 % [66.6, 74.6] (344 / 486 clean-correct)" in text and MEANINGS["tcs"] in text
    assert "untargeted" in str(Counts(n=2, clean_correct=2, success=1, success_all=1))
    curve = Curve("patch-drop", [0.0, 0.5], [0.9, 0.5], [0.0, 0.01], 100, 3, "share dropped", "accuracy",
                  area_interval=[0.65, 0.75])
    assert "normalised area 70.0 % [65.0, 75.0] (higher is better)" in str(curve)


def test_targets_are_described():
    assert describe_targets(False) == "untargeted: any wrong class counts as success"
    assert "lowest" in describe_targets(True, "least-likely") and "class 3" in describe_targets(True, 3)


def test_attack_run_names_its_measures_targets_and_shows_progress_by_images():
    """Outside a terminal (CliRunner: stderr is not a tty) progress is a line by images, not silence."""
    res = CliRunner().invoke(app, ["attack", "run", "noise-patch-8pct", "--model", "zoo:digits-m/resnet",
                                   "--samples", "20", "--batch-size", "10"])
    assert res.exit_code == 0, res.output
    assert "[noise-patch-8pct on zoo:digits-m/resnet] 0/20 images, 0 s" in res.stderr
    assert "20/20 images" in res.stderr
    out = " ".join(res.stdout.split())
    assert "targeted: each image's target drawn uniformly from the other classes" in out
    assert f"TCS: {MEANINGS['tcs']}." in out and f"ASR: {MEANINGS['asr']}." in out
    assert " % " in out  # percentages, not raw fractions


def test_occlusion_run_prints_percentages_and_the_area_with_its_interval(tmp_path):
    res = CliRunner().invoke(app, ["occlusion", "run", "patch-drop", "--model", "zoo:digits-m/resnet", "--samples",
                                   "10", "--seeds", "1", "--param", "levels=[0,0.5]", "--plot",
                                   str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.stdout.split())
    assert "Accuracy with a fraction of the grid's cells dropped at random" in out
    assert "normalised area" in out and "(95 % bootstrap over images), higher is better" in out
    assert "0.900" not in out and " % " in out


def test_a_board_defines_asr_and_tcs_in_its_header(tmp_path):
    from robust import leaderboard
    from robust.leaderboard.build import MEASURES_NOTE
    from robust.runner import parse_spec, run_board

    spec = parse_spec({"dataset": "digits-m", "samples": 10, "batch_size": 10, "models": ["zoo:digits-m/resnet"],
                       "attacks": ["noise-patch-8pct"]})
    run_board(spec, tmp_path / "out")
    written = leaderboard.render(spec, tmp_path / "out", formats=("md", "html"))
    assert MEANINGS["asr"] in MEASURES_NOTE and MEANINGS["tcs"] in MEASURES_NOTE
    assert MEASURES_NOTE in written["md"].read_text()
    assert MEANINGS["tcs"].replace("'", "&#39;") in written["html"].read_text()
