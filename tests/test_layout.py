"""The layering the README promises: click only in `commands`, and `wgan` independent of the
classifier and augmentation packages (so a generator can be trained and sampled without them)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    return {str(path.relative_to(ROOT)): imported_modules_of(path.read_text()) for path in (ROOT / package).rglob("*.py")}


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


def test_one_function_decides_whether_a_generator_fits_the_data():
    from tests.test_augment_mixing import tiny_generator
    from wgan.compat import GeneratorMismatch, check_fits
    from wgan.data import CLASS_NAMES, DataConfig

    gen = tiny_generator()  # 16 px from 128 px crops: 14.4 arcsec/px
    gen.pixel_scale_arcsec = 1.8 * 128 / 16
    check_fits(gen, DataConfig(split="cv", resolution=16), list(CLASS_NAMES))
    with pytest.raises(GeneratorMismatch, match="makes 16 px images, the data are 32 px"):
        check_fits(gen, DataConfig(split="cv", resolution=32), list(CLASS_NAMES))
    with pytest.raises(GeneratorMismatch, match="classes"):
        check_fits(gen, DataConfig(split="cv", resolution=16), ["FRI", "FRII"])
    with pytest.raises(GeneratorMismatch, match="trained on 128 px crops at 14.4 arcsec/px, the data are 64 px crops"):
        check_fits(gen, DataConfig(split="cv", crop=64, resolution=16), list(CLASS_NAMES))
    with pytest.raises(GeneratorMismatch, match="the classifier works at 64 px"):
        check_fits(gen, DataConfig(split="cv", resolution=16), list(CLASS_NAMES), classifier_resolution=64)


def test_every_console_script_says_its_version():
    import importlib
    from importlib.metadata import version

    from click.testing import CliRunner

    text = (ROOT / "setup.cfg").read_text()
    scripts = text.split("console_scripts =")[1].split("\n\n")[0].strip().splitlines()
    for line in scripts:
        name, target = (part.strip() for part in line.split("="))
        module, attribute = target.split(":")
        result = CliRunner().invoke(getattr(importlib.import_module(module), attribute), ["--version"], prog_name=name)
        assert result.exit_code == 0 and result.output == f"{name}, version {version('radiogan')}\n", (name, result.output)


@pytest.mark.parametrize("package", ["wgan", "classifier", "augment"])
def test_tools_are_commands_not_library_mains(package):
    """One front door: a tool a user runs is a click command in `commands`, never an argparse
    `main()` or a `__main__` block inside a library."""
    offenders = set()
    for path in (ROOT / package).rglob("*.py"):
        text = path.read_text()
        if "argparse" in imported_modules_of(text) or "__main__" in text or "def main(" in text:
            offenders.add(str(path.relative_to(ROOT)))
    assert offenders == set()


def imported_modules_of(text: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names
