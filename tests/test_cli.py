"""The two commands end to end through click's runner, on the real FIRST data at 32 px."""

import json

import h5py
import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner
from PIL import Image

from wgan.cli import sample_command, train_command
from wgan.data import DataConfig, load_dataset


def invoke(command, args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = invoke(train_command, ["--resolution", 32, "--iters", 3, "--batch-size", 16, "--n-critic", 2,
                                    "--log-every", 1, "--checkpoint-every", 2, "--run-dir", run_dir, "--no-progress"])
    assert result.exit_code == 0, result.output
    return run_dir


def test_train_writes_run_directory(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["data"]["source"] == "first" and config["network"]["resolution"] == 32
    assert (trained / "generator.pt").is_file() and list(trained.glob("events.out.tfevents.*"))
    assert len((trained / "stats.jsonl").read_text().splitlines()) == 3


def test_resume_auto_extends_the_run(trained, tmp_path):
    result = invoke(train_command, ["--resume", "auto", "--run-dir", trained, "--iters", 4, "--lr-g", 0.5,
                                    "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output and "ignoring lr_g" in result.output
    assert [json.loads(x)["step"] for x in (trained / "stats.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_dry_run_prints_config_and_writes_nothing(tmp_path):
    result = invoke(train_command, ["--dry-run", "--runs-root", tmp_path / "runs", "--kimg", 10])
    assert result.exit_code == 0
    config = json.loads(result.stdout)
    assert config["preset"] == "small" and config["iters"] == 32  # ceil(10000 / (64 * 5))
    assert config["network"]["resolution"] == 64 and config["data"]["resolution"] == 64
    assert (config["data"]["source"], config["data"]["split"], config["data"]["subset"]) == ("first", "literature", "train")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--resolution", 48], "power of two"),
    (["--diffaug", "colour"], "unknown augmentation"),
    (["--data", "/no/such/folder"], "no such data folder"),
    (["--resume", "/no/such.pt"], "no such checkpoint"),
    (["--crop", 100, "--resolution", 64], "must divide"),
    (["--resolution", 32, "--eval-every", 5, "--eval-extractor", "/no/extractor.pt"], "no such checkpoint"),
])
def test_train_bad_input_is_a_click_error(args, message, tmp_path):
    result = invoke(train_command, [*args, "--iters", 1, "--runs-root", tmp_path, "--no-progress"])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_sample_every_format_and_read_back(trained, tmp_path):
    gen = trained / "generator.pt"
    base = ["--checkpoint", gen, "--n", 10, "--seed", 100, "--no-progress"]
    for fmt in ("png", "npz", "h5", "fits"):
        result = invoke(sample_command, [*base, "--format", fmt, "--out", tmp_path / fmt, "--grid"])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in (tmp_path / fmt).glob("grid_*.png")) == [
            "grid_Bent.png", "grid_Compact.png", "grid_FRI.png", "grid_FRII.png"]

    pngs = sorted((tmp_path / "png").glob("*_seed*.png"))
    assert len(pngs) == 10 and pngs[0].name == "Bent_seed0000000108.png"
    png = {p.name.split(".")[0]: np.asarray(Image.open(p)) for p in pngs}
    assert next(iter(png.values())).shape == (32, 32)

    with np.load(tmp_path / "npz" / "samples.npz", allow_pickle=False) as npz:
        assert npz["images"].shape == (10, 32, 32) and npz["images"].dtype == np.uint8
        assert np.bincount(npz["labels"]).tolist() == [3, 3, 2, 2]
        assert npz["seeds"].tolist() == list(range(100, 110))
        assert np.array_equal(npz["images"][0], png["FRI_seed0000000100"])

    data = load_dataset(DataConfig(source=str(tmp_path / "h5" / "samples.h5"), crop=None))
    assert len(data) == 10 and data.class_counts() == {"FRI": 3, "FRII": 3, "Compact": 2, "Bent": 2}
    assert np.array_equal(data.images[9].numpy(), png["Bent_seed0000000109"])
    with h5py.File(tmp_path / "h5" / "samples.h5") as h5:
        assert h5["data_0"]["Img"].attrs["Source"].startswith("generated:")

    fits_files = sorted((tmp_path / "fits").glob("*.fits"))
    assert len(fits_files) == 10
    with fits.open(tmp_path / "fits" / "Compact_seed0000000106.fits") as hdul:
        header, image = hdul[0].header, hdul[0].data
    assert header["CLASS"] == "Compact" and header["SEED"] == 106 and len(header["GENHASH"]) == 16
    assert header["CDELT2"] == pytest.approx(1.8 * 4 / 3600)  # 128 px crop at 32 px
    assert image.shape == (32, 32) and np.abs(np.round(image) - png["Compact_seed0000000106"]).max() <= 1


def test_sample_one_class(trained, tmp_path):
    result = invoke(sample_command, ["--checkpoint", trained / "generator.pt", "--n", 3, "--class", "Bent",
                                     "--out", tmp_path, "--no-progress"])
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"Bent_seed{i:010d}.png" for i in range(3)]


@pytest.mark.parametrize("case", ["n0", "class", "missing", "foreign", "unwritable"])
def test_sample_bad_input_is_a_click_error_and_writes_nothing(trained, tmp_path, case):
    out = tmp_path / "out"
    args = {"n0": ["--n", 0], "class": ["--n", 2, "--class", "Spiral"], "missing": ["--n", 2, "--checkpoint", tmp_path / "x.pt"]}
    if case == "foreign":
        (tmp_path / "foreign.pt").write_bytes(b"\x00" * 100)
        args[case] = ["--n", 2, "--checkpoint", tmp_path / "foreign.pt"]
    if case == "unwritable":
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "out"
        args[case] = ["--n", 2]
    base = [] if case in ("missing", "foreign") else ["--checkpoint", trained / "generator.pt"]
    result = invoke(sample_command, [*base, *args[case], "--out", out, "--no-progress"])
    assert result.exit_code != 0 and "Error" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_sample_grid_with_fewer_images_than_classes(trained, tmp_path):
    result = invoke(sample_command, ["--checkpoint", trained / "generator.pt", "--n", 2, "--grid", "--out", tmp_path,
                                     "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("grid_*.png")) == ["grid_FRI.png", "grid_FRII.png"]
