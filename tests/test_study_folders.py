"""Study folders kept in a repository: cells shared with another study kept as references, and
the tools that read such folders (which carry results.json and cells, but no sweep.json)."""

import json
import shutil

import pytest
from click.testing import CliRunner

from commands.augment import report_command
from commands.study_tools import tools_group
from tests.test_augment_eval import BASE, make_generator, run


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, session_cache):
    generator = make_generator(tmp_path_factory.mktemp("gen"), split="cv", fold=0)
    out = tmp_path_factory.mktemp("sweep")
    result = run([*BASE, "--checkpoint", generator], out)
    assert result.exit_code == 0, result.output
    return out, generator


def test_cells_shared_with_the_study_they_came_from_are_references_every_reader_follows(sweep, tmp_path):
    """augment-tools share-cells keeps a reused cell as a reference (path and SHA-256) instead of a
    copy: the report is written again identically, a later study still reuses it, and a
    referenced file that changed is refused in one line."""
    (folder, generator), first, second = sweep, tmp_path / "first", tmp_path / "second"
    shutil.copytree(folder, first)
    assert run([*BASE, "--ratio", "0.5", "--checkpoint", generator, "--reuse-from", str(first)], second).exit_code == 0
    report = (second / "report.md").read_text()
    itself = CliRunner().invoke(tools_group, ["share-cells", str(second), "--with", str(second)])
    assert itself.exit_code == 0 and "0 copies replaced" in itself.output  # never a reference to itself
    shared = CliRunner().invoke(tools_group, ["share-cells", str(second)])  # the folders its results.json names
    assert shared.exit_code == 0 and "4 copies replaced by references" in shared.output, shared.output
    assert sorted(p.relative_to(second / "cells").as_posix() for p in (second / "cells").rglob("*.json")) == [
        "r=0.5/fold0-seed0.json", "references.json"]
    assert CliRunner().invoke(report_command, [str(second)]).exit_code == 0
    assert (second / "report.md").read_text() == report
    listed = run([*BASE, "--checkpoint", generator, "--reuse-from", str(second), "--dry-run"], tmp_path / "third")
    assert f"r=1.5  fold 0  seed 0  reused from {first}" in listed.output, listed.output
    cell = first / "cells" / "r=0" / "fold0-seed0.json"
    cell.write_text(cell.read_text().replace('"seed": 0', '"seed": 0 ', 1))
    changed = CliRunner().invoke(report_command, [str(second)])
    assert changed.exit_code == 1 and "Traceback" not in changed.output
    assert "cell r=0/fold0-seed0.json refers to" in changed.output and "which has changed since" in changed.output


def test_the_corner_case_list_comes_from_a_study_folder_with_or_without_its_sweep_json(sweep, tmp_path):
    """augment-tools corner-cases reads the real-only cells of a study; a folder kept in a
    repository has results.json but no sweep.json, and gives the same list."""
    kept = tmp_path / "kept"
    shutil.copytree(sweep[0], kept)
    (kept / "sweep.json").unlink()
    lists = {}
    for name, folder in (("run", sweep[0]), ("kept", kept)):
        result = CliRunner().invoke(tools_group, ["corner-cases", str(folder), str(tmp_path / f"{name}.json")])
        assert result.exit_code == 0, result.output
        lists[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert lists["run"] == lists["kept"]
    cell = json.loads((sweep[0] / "cells" / "r=0" / "fold0-seed0.json").read_text())
    wrong = sum(p != t for p, t in zip(cell["test"]["predicted"], cell["test"]["labels"], strict=True))
    assert lists["kept"]["counts"]["baseline-wrong"] == wrong  # one run: its wrong answers
