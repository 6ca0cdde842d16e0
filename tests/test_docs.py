"""The documentation: the site builds strictly, the README's links resolve, and its quick start runs."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
# the quick start at smoke sizes: the same commands and options, smaller numbers
SMOKE = {"--iters": "2", "--n": "8", "--n-per-class": "8", "--epochs": "1"}


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "commands" / "index.html").read_text()
    for command in ("wgan-train", "wgan-sample", "augment-eval", "radiogan-release", "augment-tools", "wgan-data"):
        assert f">{command}<" in reference  # generated from the click commands, so it cannot drift
    assert "--generator-seeds" in reference


def test_every_link_of_the_readme_resolves():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    assert targets
    assert [t for t in targets if not t.startswith("http") and not (ROOT / t).exists()] == []


def quick_start() -> list[list[str]]:
    block = README.read_text().split("## Quick start")[1].split("```bash")[1].split("```")[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line.split("#")[0])
        if words and words[0] != "tensorboard":
            commands.append([SMOKE.get(before, word) for before, word in zip([None, *words], words)])
    return commands


def test_the_quick_start_is_what_this_test_runs():
    names = [c[0] for c in quick_start()]
    assert names == ["wgan-train", "wgan-sample", "wgan-eval", "augment-eval"]
    assert all(set(SMOKE) & set(c) for c in quick_start())  # every one has a size this test shrinks


@pytest.mark.parametrize("index", range(4))
def test_the_quick_start_runs_at_smoke_size(index, tmp_path):
    command = quick_start()[index]
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, (command, done.stderr[-2000:])
    assert "\r" not in done.stderr  # a pipe gets plain progress lines
