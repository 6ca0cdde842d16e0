"""Study plans: declared before any cell runs, refused when wrong or edited, and reported first."""

import json
import re

import pytest
from click.testing import CliRunner

from augment import analysis, plan
from commands.augment import augment_eval_command
from tests.helpers import study_cell

GOOD = """
name = "trial"
question = "Does r=1 beat real only?"
primary = "accuracy"
secondary = ["Bent/f1"]
decision = "a gain when its Holm p is below 0.05"

[options]
ratio = ["1"]
folds = [0]
seeds = [0, 1]
epochs = 1
baselines = false

[[comparisons]]
name = "r1-vs-real"
arm = "r=1"
against = "r=0"
family = "confirmatory"
"""


def _write(tmp_path, text, name="plan.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("name = ", "not valid TOML"),
    (GOOD + "\ncolour = 'blue'\n", "unknown key 'colour'"),
    (GOOD.replace('family = "confirmatory"', 'family = "primary"'), "family 'primary' is not one of"),
    (GOOD.replace('against = "r=0"\n', ""), "'against' must be a string"),
    (GOOD.replace('question = "Does r=1 beat real only?"\n', ""), "'question' must be a non-empty string"),
    (GOOD.split("[[comparisons]]")[0], "no [[comparisons]]"),
])
def test_a_plan_that_is_wrong_is_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(plan.PlanError, match=re.escape(message)):
        plan.load(_write(tmp_path, text))


def test_the_plan_hash_is_its_bytes(tmp_path):
    first = plan.load(_write(tmp_path, GOOD))
    assert first == plan.load(_write(tmp_path, GOOD, "copy.toml"))
    assert plan.load(_write(tmp_path, GOOD + "\n# a comment\n")).sha256 != first.sha256


def test_holm_runs_within_each_declared_family():
    """Two confirmatory comparisons share one Holm adjustment; an exploratory one has its own."""
    cells = [study_cell(arm, f, a, seed=s) for arm, a in (("r=0", 0.78), ("r=1", 0.80), ("r=2", 0.79), ("r=3", 0.70))
             for f in range(3) for s in range(2)]
    described = {"primary": "accuracy", "secondary": ["Bent/f1"], "comparisons": [
        {"name": "one", "arm": "r=1", "against": "r=0", "family": "confirmatory"},
        {"name": "two", "arm": "r=2", "against": "r=0", "family": "confirmatory"},
        {"name": "three", "arm": "r=3", "against": "r=0", "family": "exploratory"}]}
    out = {c["name"]: c for c in analysis.declared(cells, described)}
    p = {name: c["scores"]["accuracy"]["p"] for name, c in out.items()}
    assert out["three"]["holm_p"] == p["three"]  # alone in its family
    small, large = sorted((p["one"], p["two"]))
    assert sorted((out["one"]["holm_p"], out["two"]["holm_p"])) == pytest.approx([min(1, 2 * small), max(min(1, 2 * small), large)])
    assert out["one"]["pairs"] == 6 and set(out["one"]["scores"]) == {"accuracy", "Bent/f1"}


def run(args, out):
    return CliRunner().invoke(augment_eval_command, [*args, "--resolution", "32", "--out", str(out), "--no-progress"])


@pytest.fixture(scope="module")
def generator(tmp_path_factory, session_cache):
    from tests.test_augment_eval import make_generator

    return make_generator(tmp_path_factory.mktemp("gen"), split="cv", fold=0)


def test_a_planned_study_runs_as_declared_and_reports_its_comparisons_first(generator, tmp_path):
    path = _write(tmp_path, GOOD)
    out = tmp_path / "study"
    result = run(["--plan", str(path), "--checkpoint", generator, "--workers", "1"], out)
    assert result.exit_code == 0, result.output
    sha = plan.load(path).sha256
    cell = json.loads((out / "cells" / "r=1" / "fold0-seed1.json").read_text())
    assert cell["identity"]["plan"] == {"name": "trial", "sha256": sha} and cell["identity"]["base"]["epochs"] == 1
    results = json.loads((out / "results.json").read_text())
    [declared] = results["declared"]
    assert declared["name"] == "r1-vs-real" and declared["pairs"] == 2 and "holm_p" in declared
    text = (out / "report.md").read_text()
    assert text.index("## Declared comparisons (plan `trial`") < text.index("Test metrics on the real test split")
    assert "| r1-vs-real: r=1 - r=0 | confirmatory | 2 |" in text

    # the command line may not contradict the plan; an edited plan under the same name is refused
    again = run(["--plan", str(path), "--checkpoint", generator, "--epochs", "2"], out)
    assert again.exit_code == 1 and "--epochs is set by the plan 'trial'" in again.output
    edited = _write(tmp_path, GOOD.replace("epochs = 1", "epochs = 1\nbatch-size = 16"), "edited.toml")
    again = run(["--plan", str(edited), "--checkpoint", generator, "--overwrite"], out)
    assert again.exit_code == 1 and "plan 'trial' was edited after its cells ran" in again.output
    assert "Traceback" not in again.output and json.loads((out / "results.json").read_text()) == results
    assert len(list((out / "cells").glob("*/*.json"))) == 4  # --overwrite deleted none of the first version's cells


@pytest.mark.parametrize("change, message", [
    (("ratio = [\"1\"]", "ratio = [\"1\"]\ncolour = 2"), "[options] names 'colour', which augment-eval does not have"),
    (('arm = "r=1"', 'arm = "r=2"'), "unknown arm 'r=2' (the study's arms: r=0, r=1)"),
    (('primary = "accuracy"', 'primary = "accuracy_at_5"'), "unknown primary score 'accuracy_at_5'"),
])
def test_a_plan_naming_what_the_study_lacks_is_refused_before_training(generator, tmp_path, change, message):
    path = _write(tmp_path, GOOD.replace(*change))
    result = run(["--plan", str(path), "--checkpoint", generator], tmp_path / "study")
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "study" / "cells").exists()


def _gain(mean, low, high):
    return {"mean": mean, "low": low, "high": high, "n": 15, "p": 0.01, "significant": low > 0 or high < 0}


def _decided(holm=(0.01, 0.02), means=(0.01, 0.01), cv=(0.004, 0.002, 0.006)):
    """results and summary of a study with two confirmatory comparisons of r=1 and one exploratory."""
    comparisons = [{"name": n, "arm": "r=1", "against": against, "family": "confirmatory", "pairs": 15,
                    "scores": {"accuracy": _gain(m, m - 0.005, m + 0.005)}, "holm_p": h}
                   for n, against, m, h in (("vs-real", "r=0", means[0], holm[0]), ("vs-control", "ctrl", means[1], holm[1]))]
    comparisons.append({"name": "shuffled", "arm": "r=1", "against": "r=1+shuffled", "family": "exploratory",
                        "pairs": 15, "scores": {"accuracy": _gain(-0.05, -0.06, -0.04)}, "holm_p": 0.9})
    summary = {"r=1": {"cross_validated": {"gain": {"accuracy": _gain(*cv)}, "gain_two_way": None}} if cv else {}}
    return {"plan": {"primary": "accuracy"}, "declared": comparisons}, summary


@pytest.mark.parametrize("case, verdict, failing", [
    ({}, "yes", []),
    ({"holm": (0.01, 0.06)}, "no", ["vs-control"]),  # a Holm p above 0.05
    ({"means": (-0.01, 0.01)}, "no", ["vs-real"]),  # significant, but a loss
    ({"cv": (0.004, -0.001, 0.009)}, "no", ["r=1: cross-validated"]),  # the validation images disagree
    ({"cv": None}, "no", ["r=1: cross-validated"]),  # not scored
])
def test_the_decision_checks_say_which_conditions_of_the_rule_hold(case, verdict, failing):
    from augment.report_sections import decision_checks

    lines = decision_checks(*_decided(**case), reference="r=0")
    assert f"All of these hold: {verdict}." in lines
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| condition")]
    assert len(rows) == 3  # two comparisons and the cross-validated gain; the exploratory one is not a condition
    assert sorted(r.split(":")[0][2:] for r in rows if r.endswith("| no |")) == sorted(f.split(":")[0] for f in failing)
    assert decision_checks({"plan": {"primary": "accuracy"}, "declared": []}, {}, "r=0") == []
