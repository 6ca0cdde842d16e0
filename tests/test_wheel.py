"""The package as a user gets it: a wheel built from this tree, installed into a new virtual
environment, runs the main commands from a directory that is not the repository, with the
released models found inside the installed package."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """bin folder of a new venv holding the wheel (its dependencies come from this environment)."""
    where = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(where / "dist")], check=True, capture_output=True)
    wheel = next((where / "dist").glob("radiogan-*.whl"))
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # the dependencies (torch, the data wheel, ...) from this environment, after the new venv's own packages
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "dependencies.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True)
    return wheel, venv / "bin"


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_wheel_carries_the_released_models_and_no_training_states(installed):
    import zipfile

    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for model in ("generator.pt", "generator-cv1.pt", "extractor.pt", "registry.json", "corner_cases.json",
                  "replicas/generator-cv0-s1.pt", "replicas/generator-cv0-s1.json"):
        assert f"radiogan_models/{model}" in names
    assert not [n for n in names if "training" in n.split("/")[1:2]]  # training states stay in the repository


def test_commands_run_from_any_directory_with_the_installed_models(installed, tmp_path):
    _, bin_dir = installed
    where = run(bin_dir, tmp_path, "python", "-c", "import wgan, wgan.released as r; print(wgan.__file__, r.CHECKPOINTS)")
    assert str(ROOT) not in where.stdout and "radiogan_models" in where.stdout, where.stdout  # the wheel, not the tree
    sample = run(bin_dir, tmp_path, "wgan-sample", "--n", "8", "--no-progress")
    assert sample.returncode == 0, sample.stderr
    assert len(list((tmp_path / "samples").rglob("*.png"))) == 8
    evaluation = run(bin_dir, tmp_path, "wgan-eval", "--n", "50")
    assert evaluation.returncode == 0, evaluation.stderr
    assert "class fidelity" in evaluation.stdout
    # two workers: the pool's processes must exit cleanly (a killed one leaves a "leaked semaphore" warning)
    study = run(bin_dir, tmp_path, "augment-eval", "--ratio", "1", "--folds", "0", "--epochs", "1", "--workers", "2",
                "--no-baselines", "--no-progress", "--out", "study")
    assert study.returncode == 0, study.stderr
    assert "leaked" not in study.stderr, study.stderr
    assert (tmp_path / "study" / "results.json").is_file()
    named = run(bin_dir, tmp_path, "wgan-sample", "--n", "4", "--checkpoint", "first-cv7", "--out", "other")
    assert named.returncode == 1 and "no released generator named first-cv7" in named.stderr
    replica = run(bin_dir, tmp_path, "wgan-sample", "--n", "4", "--checkpoint", "first-cv0-s1", "--out", "replica",
                  "--no-progress")
    assert replica.returncode == 0, replica.stderr
    # the tools that once were library mains, from the wheel and another directory
    models = Path(where.stdout.split()[1])
    cards = run(bin_dir, tmp_path, "radiogan-release", "cards", str(models / "generator.json"),
                str(models / "replicas" / "generator-cv0-s1.json"))
    assert cards.returncode == 0 and cards.stdout.count("\n| 0 |") == 2, cards.stderr
    missing = run(bin_dir, tmp_path, "augment-tools", "compare", "a=nowhere")
    assert missing.returncode == 2 and "expected LABEL=FOLDER with a results.json" in missing.stderr
    assert "Traceback" not in missing.stderr
