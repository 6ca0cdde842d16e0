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


PACKAGES = ("wgan", "classifier", "augment", "commands")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def project_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in it, inside functions and TYPE_CHECKING too."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            anchor = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                found.add(target)
    return found


def test_no_module_imports_itself_through_others():
    """No import circle among the project's modules, counting the imports inside functions that
    once hid two (augment.reuse <-> augment.sweep, wgan.registry <-> wgan.released): what two
    modules share lives in a third."""
    modules = project_modules()
    graph = {name: project_imports(name, path, modules) for name, path in modules.items()}
    circles = []
    for start in graph:
        stack, seen = [(start, (start,))], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(" -> ".join((*trail, start)))
                elif nxt not in seen and nxt > start:  # each circle once, from its smallest module
                    seen.add(nxt)
                    stack.append((nxt, (*trail, nxt)))
    assert circles == []
