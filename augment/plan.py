"""A study plan: the question and its comparisons, declared before any cell runs.

A plan is a TOML file:

    name = "confirmatory-1"          # a new name for every edit once cells exist
    question = "Do filtered generated images raise accuracy over real only?"
    primary = "accuracy"             # the score the decision reads
    secondary = ["FRI/f1", "Bent/f1"]
    decision = "a gain when the Holm-adjusted p of every confirmatory comparison is below 0.05"

    [options]                        # augment-eval's options, by their long names
    ratio = ["1"]
    seeds = [3, 4, 5]
    fidelity-filter = 0.5

    [[comparisons]]
    name = "filter-vs-real"
    arm = "r=1"
    against = "r=0"
    family = "confirmatory"          # or "exploratory"

Its SHA-256 enters every cell's identity and the report; Holm's adjustment runs within each
family; a plan whose name a study folder knows under another hash is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from wgan.atomic import write_text

FAMILIES = ("confirmatory", "exploratory")
TOP_KEYS = {"name", "question", "primary", "secondary", "decision", "options", "comparisons"}
COMPARISON_KEYS = {"name", "arm", "against", "family"}
RECORD = "plan.json"  # in a study folder: the plan its cells ran under


class PlanError(ValueError):
    """A plan that does not parse, names something unknown, or was edited after its cells ran."""


@dataclass(frozen=True)
class Comparison:
    name: str
    arm: str
    against: str
    family: str


@dataclass(frozen=True)
class Plan:
    name: str
    sha256: str
    question: str
    primary: str
    secondary: tuple[str, ...]
    decision: str
    options: dict = field(default_factory=dict)
    comparisons: tuple[Comparison, ...] = ()

    def record(self) -> dict:
        """What cells (identity) and reports carry of the plan."""
        return {"name": self.name, "sha256": self.sha256}

    def describe(self) -> dict:
        return {**self.record(), "question": self.question, "primary": self.primary, "secondary": list(self.secondary),
                "decision": self.decision, "options": self.options,
                "comparisons": [c.__dict__ for c in self.comparisons]}


def load(path: Path) -> Plan:
    """Parse and check the plan's own structure (arms, options and scores are checked against the
    study later); PlanError naming the key that is wrong."""
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode())
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(f"{path}: cannot read the plan ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise PlanError(f"{path}: not valid TOML ({error})") from None
    _only(data, TOP_KEYS, f"{path}")
    for key in ("name", "question", "primary", "decision"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise PlanError(f"{path}: '{key}' must be a non-empty string")
    secondary = data.get("secondary", [])
    if not isinstance(secondary, list) or not all(isinstance(s, str) for s in secondary):
        raise PlanError(f"{path}: 'secondary' must be a list of score names")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise PlanError(f"{path}: 'options' must be a table of augment-eval options")
    comparisons = []
    for i, c in enumerate(data.get("comparisons", [])):
        where = f"{path}: comparisons[{i}]"
        if not isinstance(c, dict):
            raise PlanError(f"{where} must be a table")
        _only(c, COMPARISON_KEYS, where)
        missing = [k for k in sorted(COMPARISON_KEYS) if not isinstance(c.get(k), str)]
        if missing:
            raise PlanError(f"{where}: '{missing[0]}' must be a string")
        if c["family"] not in FAMILIES:
            raise PlanError(f"{where}: family '{c['family']}' is not one of {', '.join(FAMILIES)}")
        comparisons.append(Comparison(c["name"], c["arm"], c["against"], c["family"]))
    if not comparisons:
        raise PlanError(f"{path}: no [[comparisons]]: a plan declares at least one")
    names = [c.name for c in comparisons]
    if len(set(names)) < len(names):
        raise PlanError(f"{path}: two comparisons named '{next(n for n in names if names.count(n) > 1)}'")
    return Plan(data["name"], hashlib.sha256(raw).hexdigest(), data["question"], data["primary"], tuple(secondary),
                data["decision"], options, tuple(comparisons))


def _only(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PlanError(f"{where}: unknown key '{unknown[0]}' (expected {', '.join(sorted(allowed))})")


def check_arms(plan: Plan, arms: list[str]) -> None:
    for c in plan.comparisons:
        for key in ("arm", "against"):
            if getattr(c, key) not in arms:
                raise PlanError(f"plan '{plan.name}', comparison '{c.name}': unknown {key} '{getattr(c, key)}' "
                                f"(the study's arms: {', '.join(arms)})")


def check_scores(plan: Plan, score_names: list[str]) -> None:
    for key, name in (("primary", plan.primary), *(("secondary", s) for s in plan.secondary)):
        if name not in score_names:
            raise PlanError(f"plan '{plan.name}': unknown {key} score '{name}' (scores: {', '.join(score_names)})")


def check_folder(folder: Path, plan: Plan | None) -> None:
    """Refuse a plan edited after cells ran under its name in `folder` (read-only)."""
    path = folder / RECORD
    if plan is not None and path.is_file():
        stored = json.loads(path.read_text())
        if stored["name"] == plan.name and stored["sha256"] != plan.sha256:
            raise PlanError(f"plan '{plan.name}' was edited after its cells ran in {folder} (sha256 "
                            f"{stored['sha256'][:12]} -> {plan.sha256[:12]}); a changed plan is a new study: "
                            "give it a new name (and --out)")


def record(folder: Path, plan: Plan | None) -> None:
    """Write the plan the folder's cells run under (after `check_folder`)."""
    if plan is not None:
        write_text(folder / RECORD, json.dumps(plan.describe(), indent=2))
