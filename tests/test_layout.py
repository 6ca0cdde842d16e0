"""The layering the README promises: click only in `commands`, and `wgan` independent of the
classifier and augmentation packages (so a generator can be trained and sampled without them)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", ["wgan", "classifier", "augment"])
def test_libraries_never_import_click(package):
    assert {f for f, names in imported_modules(package).items() if "click" in names} == set()


def test_wgan_imports_neither_classifier_nor_augment():
    offending = {f: names & {"classifier", "augment", "commands"} for f, names in imported_modules("wgan").items()}
    assert {f: n for f, n in offending.items() if n} == {}


def test_every_console_script_lives_in_commands():
    text = (ROOT / "setup.cfg").read_text()
    scripts = text.split("console_scripts =")[1].split("\n\n")[0].strip().splitlines()
    assert scripts and all("= commands." in line for line in scripts)
