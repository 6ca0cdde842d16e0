"""The two commands end to end through click's runner, on the real FIRST data at 32 px."""

import json
import shutil

import h5py
import numpy as np
import pytest
import torch
from astropy.io import fits
from click.testing import CliRunner
from PIL import Image

from commands.wgan import sample_command, train_command
from wgan import checkpoint
from wgan.data import DataConfig, load_dataset
from wgan.device import native_bf16


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


def test_a_recipe_written_as_options_is_the_config_the_command_trains(trained):
    """bench/ and notebooks build configs with config_from_args: the run wgan-train would start."""
    from commands.wgan import config_from_args

    built = config_from_args(["--resolution", 32, "--iters", 3, "--batch-size", 16, "--n-critic", 2,
                              "--log-every", 1, "--checkpoint-every", 2])
    assert json.loads(built.to_json()) == json.loads((trained / "config.json").read_text())


def test_resume_auto_extends_the_run(trained, tmp_path):
    run = tmp_path / "run"  # a copy: the other tests read the module's run as trained (in any order)
    shutil.copytree(trained, run)
    result = invoke(train_command, ["--resume", "auto", "--run-dir", run, "--iters", 4, "--lr-g", 0.5,
                                    "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output and "ignoring lr_g" in result.output
    assert [json.loads(x)["step"] for x in (run / "stats.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_resume_without_length_options_keeps_the_saved_schedule(tmp_path):
    """A run stopped early and resumed with no length option runs to its own saved length with
    its own intervals, not the command line's defaults."""
    run_dir = tmp_path / "run"
    base = ["--resolution", 32, "--batch-size", 16, "--n-critic", 1, "--run-dir", run_dir, "--no-progress"]
    result = invoke(train_command, [*base, "--iters", 2, "--log-every", 1, "--checkpoint-every", 1, "--keep", 5])
    assert result.exit_code == 0, result.output
    config = json.loads((run_dir / "config.json").read_text())
    config["iters"] = 4  # as if the run had been started with --iters 4 and stopped at 2
    (run_dir / "config.json").write_text(json.dumps(config))
    state = sorted((run_dir / "checkpoints").glob("*.pt"))[-1]
    payload = checkpoint.load(state, checkpoint.TRAINING_STATE)
    payload["config"] = json.dumps(config)
    checkpoint.save(payload, state)
    dry = invoke(train_command, ["--resume", "auto", "--run-dir", run_dir, "--dry-run"])
    assert json.loads(dry.stdout)["iters"] == 4  # checked first: a regression would otherwise train for hours
    result = invoke(train_command, ["--resume", "auto", "--run-dir", run_dir, "--no-progress"])
    assert result.exit_code == 0, result.output
    steps = [json.loads(x)["step"] for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # saved length 4 and saved log interval 1, not 2000 kimg and 50
    assert len(list((run_dir / "checkpoints").glob("*.pt"))) == 4  # saved --keep 5, not the default 3
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["iters"], saved["log_every"], saved["keep_checkpoints"]) == (4, 1, 5)


@pytest.mark.parametrize("args, expected", [
    ([], {"preset": "small-asinh", "n_critic": 2, "lr_d": 2e-4, "upsample": "nearest", "intensity": "asinh"}),
    (["--preset", "small"], {"preset": "small", "n_critic": 5, "lr_d": 1e-4, "upsample": "transposed"}),
    (["--preset", "small-resize"], {"n_critic": 2, "lr_g": 1e-4, "lr_d": 2e-4, "upsample": "nearest"}),
    (["--preset", "small-resize", "--n-critic", 3, "--lr-d", 4e-4, "--upsample", "bilinear"],
     {"n_critic": 3, "lr_d": 4e-4, "upsample": "bilinear"}),
    (["--loss", "logistic-r1", "--gp-every", 4], {"loss": "logistic-r1", "gp_every": 4}),
    (["--no-amp"], {"amp": False}),
    (["--preset", "small-resize"], {"intensity": "linear"}),
    (["--preset", "small-resize", "--intensity", "sqrt"], {"intensity": "sqrt", "upsample": "nearest"}),
    ([], {"channels": (32, 256)}),
    (["--width", 0.5], {"channels": (16, 128), "upsample": "nearest"}),
    (["--preset", "paper", "--width", 1.5], {"channels": (96, 1536), "n_critic": 5}),
])
def test_presets_give_defaults_that_options_override(args, expected):
    result = invoke(train_command, ["--dry-run", *args])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    flat = {"preset": config["preset"], "n_critic": config["n_critic"], "lr_g": config["optim"]["lr_g"],
            "lr_d": config["optim"]["lr_d"], "upsample": config["network"]["upsample"], "amp": config["amp"],
            "loss": config["loss"]["name"], "gp_every": config["loss"]["gp_every"],
            "intensity": config["network"]["intensity"],
            "channels": (config["network"]["base_channels"], config["network"]["max_channels"])}
    assert {k: flat[k] for k in expected} == expected


def test_amp_defaults_to_native_bf16():
    result = invoke(train_command, ["--dry-run"])
    assert json.loads(result.stdout)["amp"] == native_bf16(torch.device("cpu"))


def test_amp_where_bf16_is_only_emulated_is_kept_with_a_notice(monkeypatch, capsys):
    """--amp on a CPU without native bf16 keeps the bf16 numbers asked for, but says it is many
    times slower (a 10-hour ViT cell instead of a 40-minute one must not come as a surprise)."""
    import commands.options
    import commands.wgan_train
    import wgan.device

    for module in (wgan.device, commands.wgan_train):
        monkeypatch.setattr(module, "native_bf16", lambda device: False)
    asked = invoke(train_command, ["--dry-run", "--amp"])
    assert asked.exit_code == 0 and json.loads(asked.stdout)["amp"] is True
    assert "only emulated" in asked.stderr and "--no-amp" in asked.stderr
    for args in ([], ["--no-amp"]):  # the default is float32 there: nothing to say
        result = invoke(train_command, ["--dry-run", *args])
        assert json.loads(result.stdout)["amp"] is False and "emulated" not in result.stderr
    assert commands.options.resolve_classifier_amp(True, "cpu") is True
    assert "only emulated" in capsys.readouterr().err
    assert commands.options.resolve_classifier_amp(None, "cpu") is False
    assert "emulated" not in capsys.readouterr().err
    monkeypatch.setattr(wgan.device, "native_bf16", lambda device: True)
    assert commands.options.resolve_classifier_amp(True, "cpu") is True
    assert "emulated" not in capsys.readouterr().err


def test_dry_run_prints_config_and_writes_nothing(tmp_path):
    result = invoke(train_command, ["--dry-run", "--runs-root", tmp_path / "runs", "--kimg", 10])
    assert result.exit_code == 0
    config = json.loads(result.stdout)
    assert config["preset"] == "small-asinh" and config["iters"] == 79  # ceil(10000 / (64 * 2))
    assert config["network"]["resolution"] == 64 and config["data"]["resolution"] == 64
    assert (config["data"]["source"], config["data"]["split"], config["data"]["subset"]) == ("first", "cv", "train")
    assert not (tmp_path / "runs").exists()


def test_the_default_length_is_the_released_generators_and_iters_overrides_kimg(tmp_path):
    lengths = []
    for args in ([], ["--kimg", 10, "--iters", 7]):
        result = invoke(train_command, ["--dry-run", "--runs-root", tmp_path / "runs", *args])
        assert result.exit_code == 0, result.output
        lengths.append(json.loads(result.stdout)["iters"])
    assert lengths == [2500, 7]


def test_an_old_option_name_still_works_with_a_notice(tmp_path):
    result = invoke(train_command, ["--iters", 1, "--runs-root", tmp_path, "--resolution", 32, "--eval-every", 5,
                                    "--eval-extractor=/no/extractor.pt", "--no-progress"])
    assert result.exit_code != 0 and "no such checkpoint" in result.output  # the value reached --extractor
    assert "notice: --eval-extractor is now --extractor" in result.output
    assert "--eval-extractor" not in invoke(train_command, ["--help"]).output  # hidden


@pytest.mark.parametrize("args, message", [
    (["--resolution", 48], "power of two"),
    (["--diffaug", "colour"], "unknown augmentation"),
    (["--data", "/no/such/folder"], "no such data folder"),
    (["--resume", "/no/such.pt"], "no such checkpoint"),
    (["--crop", 100, "--resolution", 64], "must divide"),
    (["--resolution", 32, "--eval-every", 5, "--extractor", "/no/extractor.pt"], "no such checkpoint"),
    (["--device", "foo"], "no device 'foo' here; available: auto, cpu"),
    (["--device", "cuda:7"], "no device 'cuda:7'"),
    (["--seed", 2**63], "range 0<=x<=9223372036854775807"),
    (["--kimg", "inf"], "inf is not a finite number"),
    (["--kimg", "nan"], "not a finite number"),
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
    # a complete celestial WCS: astropy reads a sky position for every pixel, centred, 7.2" a pixel
    from astropy.wcs import WCS

    wcs = WCS(header)
    assert wcs.has_celestial and wcs.wcs.ctype[0] == "RA---SIN" and wcs.wcs.ctype[1] == "DEC--SIN"
    centre = wcs.pixel_to_world(15.5, 15.5)  # 0-based pixel coordinates of the centre of a 32 px image
    assert centre.ra.deg == pytest.approx(0, abs=1e-9) and centre.dec.deg == pytest.approx(0, abs=1e-9)
    step = wcs.pixel_to_world(15.5, 16.5).separation(centre).arcsec
    assert step == pytest.approx(7.2, rel=1e-6) and wcs.pixel_to_world(16.5, 15.5).ra.deg > 359  # east left
    assert image.shape == (32, 32) and np.abs(np.round(image) - png["Compact_seed0000000106"]).max() <= 1


def test_sample_format_follows_the_out_suffix_and_a_conflict_is_refused(trained, tmp_path):
    base = ["--checkpoint", trained / "generator.pt", "--n", 4, "--no-progress"]
    for name in ("draw.npz", "draw.hdf5"):
        result = invoke(sample_command, [*base, "--out", tmp_path / name])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).is_file()  # one file, not a folder of that name
    assert len(load_dataset(DataConfig(source=str(tmp_path / "draw.hdf5"), crop=None))) == 4
    result = invoke(sample_command, [*base, "--out", tmp_path / "x.npz", "--format", "png"])
    assert result.exit_code != 0 and "its suffix means npz, but --format is png" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.npz").exists()


def test_sample_one_class(trained, tmp_path):
    result = invoke(sample_command, ["--checkpoint", trained / "generator.pt", "--n", 3, "--class", "Bent",
                                     "--out", tmp_path, "--no-progress"])
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"Bent_seed{i:010d}.png" for i in range(3)]


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


@pytest.mark.parametrize("args, message", [
    (["--n", 10**12], "need about"),
    (["--n", 10, "--seed", 2**63 - 5], "pass 9223372036854775807"),
    (["--n", 2, "--device", "tpu"], "no device 'tpu'"),
])
def test_sample_values_that_cannot_work_are_refused_up_front(trained, tmp_path, args, message):
    result = invoke(sample_command, ["--checkpoint", trained / "generator.pt", *args, "--out", tmp_path / "out",
                                     "--no-progress"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_sample_never_mixes_generators_in_one_folder(trained, tmp_path):
    out = tmp_path / "samples"
    first = ["--checkpoint", trained / "generator.pt", "--out", out, "--no-progress"]
    assert invoke(sample_command, [*first, "--n", 4]).exit_code == 0
    again = invoke(sample_command, [*first, "--n", 8, "--seed", 4])  # same generator: more images, said so
    assert again.exit_code == 0 and "now holds 12 images of this generator (4 from earlier runs" in again.output
    assert len(list(out.glob("*.png"))) == 12
    other = tmp_path / "other.pt"
    payload = checkpoint.load(trained / "generator.pt", checkpoint.GENERATOR_EXPORT)
    payload["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    checkpoint.save(payload, other)
    result = invoke(sample_command, ["--checkpoint", other, "--out", out, "--n", 4, "--no-progress"])
    assert result.exit_code != 0 and "holds images of another generator" in result.output
    assert len(list(out.glob("*.png"))) == 12
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own files")
    result = invoke(sample_command, ["--checkpoint", other, "--out", tmp_path / "mine", "--n", 4, "--no-progress"])
    assert result.exit_code != 0 and "is not empty" in result.output


@pytest.mark.parametrize("fmt", ["png", "npz", "h5", "fits"])
def test_full_disk_while_sampling_stops_with_one_line_and_no_temporary_file(trained, tmp_path, monkeypatch, fmt):
    from wgan import writers

    writer = writers.WRITERS[fmt]
    real_write, calls = writer.write, {"n": 0}

    def write_until_full(self, *args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real_write(self, *args)

    monkeypatch.setattr(writer, "write", write_until_full)
    out = tmp_path / "out"
    result = invoke(sample_command, ["--checkpoint", trained / "generator.pt", "--n", 8, "--batch-size", 4,
                                     "--format", fmt, "--out", out, "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "writing stopped (No space left on device)" in result.output
    assert not list(tmp_path.rglob("*.tmp"))
    if fmt in ("npz", "h5"):
        assert not (out / f"samples.{fmt}").exists()  # no half-written file
    else:
        assert len(list(out.glob(f"*.{fmt}"))) == 4  # the first batch, each file complete
