"""The parts of a study report that the statistics of "Numbers a referee accepts" add: the
declared comparisons of a plan, the intervals' wording, the cross-validated gain beside the test
gain, the gain per generator replica, and p-values with Holm's adjustment."""

from __future__ import annotations

from .analysis import class_names, headline, reported_gain
from .multiple import holm


def columns(summary: dict) -> list[str]:
    return ["accuracy", "macro_f1", *(f"{c}/f1" for c in class_names(summary))]


def format_interval(g: dict) -> str:
    if g["n"] < 2:
        return f"{g['mean']:+.3f}"
    return f"{g['mean']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]{'*' if g['significant'] else ''}"


def accuracy_p(summary: dict, reference: str) -> dict[str, dict]:
    """Per arm (not the reference): the two-way p of its accuracy gain and its Holm-adjusted p over
    every arm of the summary that has one (an exploratory family: the arms a report holds)."""
    raw = {arm: s["gain_two_way"]["accuracy"]["p"] for arm, s in summary.items()
           if arm != reference and s.get("gain_two_way")}
    adjusted = holm(raw) if raw else {}
    return {arm: {"p": raw[arm], "holm": adjusted[arm]} for arm in raw}


def format_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


TWO_WAY = ("over training runs and test images (two-way bootstrap of runs x the test images, 2,000 draws, "
            "from each cell's per-image predictions; Owen 2007); accuracy p is its two-sided p, Holm p is adjusted "
            "over every arm of this report (exploratory unless a study plan declares the comparison)")
RUNS_ONLY = ("Runs-only intervals (Student's t over the paired runs, as reports before the two-way interval gave "
              "them): they treat the test images as fixed, so they are too narrow; not used for any verdict:")


def declared(results: dict) -> list[str]:
    """The plan's question and its declared comparisons first; everything after is exploratory."""
    plan, comparisons = results.get("plan"), results.get("declared")
    if not plan or not comparisons:
        return ["No study plan: every comparison below is exploratory.", ""]
    keys = [plan["primary"], *plan["secondary"]]
    lines = [f"## Declared comparisons (plan `{plan['name']}`, sha256 {plan['sha256'][:12]})", "",
             f"Question: {plan['question']}", "", f"Decision rule: {plan['decision']}", "",
             "| comparison | family | pairs | " + " | ".join(keys) + f" | {plan['primary']} p | Holm p (within family) |",
             "|---|---|---|" + "---|" * (len(keys) + 2)]
    for c in comparisons:
        primary = c["scores"].get(plan["primary"], {})
        lines.append(f"| {c['name']}: {c['arm']} - {c['against']} | {c['family']} | {c['pairs']} | "
                     + " | ".join(format_interval(c["scores"][k]) if k in c["scores"] else "" for k in keys)
                     + f" | {format_p(primary['p']) if 'p' in primary else 'runs only'} | "
                     + (f"{format_p(c['holm_p'])} |" if "holm_p" in c else " |"))
    return [*lines, "", "Intervals over training runs and test images (two-way bootstrap). Every other number in this "
            "report is exploratory.", ""]


ALPHA = 0.05  # the level of the confirmatory checks below


def decision_checks(results: dict, summary: dict, reference: str) -> list[str]:
    """The facts a confirmatory decision rule reads, computed rather than read off by eye: per
    confirmatory comparison, whether its primary gain is positive with a Holm-adjusted p below
    ALPHA; per confirmatory arm compared with `reference`, whether its cross-validated primary gain
    has its 95 % interval above 0. The plan's own words (above) remain the rule; this says which
    of its conditions hold."""
    plan, comparisons = results.get("plan"), results.get("declared")
    confirmatory = [c for c in comparisons or [] if c["family"] == "confirmatory"]
    if not plan or not confirmatory:
        return []
    primary, checks = plan["primary"], []
    for c in confirmatory:
        gain = c["scores"].get(primary, {})
        holds = "holm_p" in c and gain.get("mean", 0) > 0 and c["holm_p"] < ALPHA
        found = (f"{gain['mean']:+.4f}, Holm p {format_p(c['holm_p'])}" if "holm_p" in c
                 else "no two-way p (the cells hold no per-image predictions)")
        checks.append((f"{c['name']}: {primary} gain > 0 with Holm p < {ALPHA:g}", found, holds))
    for arm in dict.fromkeys(c["arm"] for c in confirmatory if c["against"] == reference):
        cv = (summary.get(arm) or {}).get("cross_validated")
        if cv:
            gain = headline(cv["gain"], cv["gain_two_way"], primary)
            checks.append((f"{arm}: cross-validated {primary} gain over {reference}, 95 % interval above 0",
                           format_interval(gain), gain["low"] > 0))
        else:
            checks.append((f"{arm}: cross-validated {primary} gain over {reference}, 95 % interval above 0",
                           "not scored (the study has no inner split)", False))
    lines = ["Decision checks (computed from the cells; the decision rule above says how they combine):", "",
             "| condition | found | holds |", "|---|---|---|"]
    lines += [f"| {what} | {found} | {'yes' if holds else 'no'} |" for what, found, holds in checks]
    every = all(holds for _, _, holds in checks)
    return [*lines, "", f"All of these hold: {'yes' if every else 'no'}.", ""]


def cross_validated(summary: dict, reference: str) -> list[str]:
    """The gain on the folds' validation images beside the test-set gain, and where they disagree."""
    arms = {arm: s["cross_validated"] for arm, s in summary.items() if s.get("cross_validated")}
    if not arms:
        return []
    keys = columns(summary)
    lines = [f"Cross-validated gain over `{reference}`: each fold's validation images, scored by the model whose "
             "epoch an inner split of the training images chose (so these images chose nothing; the generators and "
             "reference classifiers never saw them), 95 % interval over runs and images; beside it the test-set "
             "gain:", "", "| arm | scored on | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    disagree = []
    for arm, cv in arms.items():
        shown = {k: headline(cv["gain"], cv["gain_two_way"], k) for k in keys}
        lines.append(f"| {arm} | validation (cross-validated) | " + " | ".join(format_interval(shown[k]) for k in keys) + " |")
        lines.append(f"| {arm} | test | " + " | ".join(format_interval(reported_gain(summary[arm], k)) for k in keys) + " |")
        test_verdict, cv_verdict = _direction(reported_gain(summary[arm], "accuracy")), _direction(shown["accuracy"])
        if test_verdict != cv_verdict:
            disagree.append(f"- {arm}: the test set says {test_verdict}, the validation images say {cv_verdict}.")
    return [*lines, "", *(disagree or ["The two scorings agree on every arm's accuracy."]), ""]


def _direction(gain: dict) -> str:
    if not gain["significant"]:
        return "no measurable change"
    return "a gain" if gain["mean"] > 0 else "a loss"


def per_generator(summary: dict) -> list[str]:
    """The accuracy gain of each arm per generator replica (cells of classifier seed s use replica
    s mod their number), when the study had several per fold."""
    arms = {arm: s["gain_by_generator"] for arm, s in summary.items() if s.get("gain_by_generator")}
    if not arms:
        return []
    replicas = sorted({r for gains in arms.values() for r in gains}, key=int)
    lines = ["Accuracy gain per generator replica (each over its own pairs; a gain one generator carries alone "
             "is not a property of the recipe):", "", "| arm | " + " | ".join(f"replica {r}" for r in replicas) + " |",
             "|---|" + "---|" * len(replicas)]
    lines += [f"| {arm} | " + " | ".join(format_interval(g[r]) if r in g else "" for r in replicas) + " |"
              for arm, g in arms.items()]
    return [*lines, ""]


