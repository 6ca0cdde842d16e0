from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.helpers import synthetic_set, tiny_config
from wgan.sampling import generate, load_generator, plan
from wgan.training_loop import train


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    return train(tiny_config(iters=4), synthetic_set(), run_dir, progress=False)


def draw(path, labels, seeds, batch_size):
    gen = load_generator(path)
    return torch.cat([images for images, _, _ in generate(gen.model, labels, seeds, batch_size)])


@pytest.mark.parametrize("n, classes, expected", [
    (100, [0, 1, 2, 3], [25, 25, 25, 25]),
    (10, [0, 1, 2, 3], [3, 3, 2, 2]),
    (5, [3], [0, 0, 0, 5]),
])
def test_plan_counts_and_seeds(n, classes, expected):
    labels, seeds = plan(n, classes, seed=7)
    assert torch.bincount(labels, minlength=4).tolist() == expected
    assert seeds.tolist() == list(range(7, 7 + n))


def test_sampling_is_deterministic_and_batch_size_independent(export):
    labels, seeds = plan(13, [0, 1, 2, 3], seed=3)
    reference = draw(export, labels, seeds, batch_size=13)
    for batch_size in (1, 4, 64):
        assert torch.allclose(draw(export, labels, seeds, batch_size), reference, atol=1e-5)
    assert not torch.allclose(draw(export, labels, seeds + 1, 13), reference)


def test_image_depends_on_its_own_seed_only(export):
    """Image with seed s is the same whether drawn alone or inside a larger request."""
    labels, seeds = plan(8, [2], seed=0)
    alone = draw(export, labels[5:6], seeds[5:6], 1)
    assert torch.allclose(alone, draw(export, labels, seeds, 8)[5:6], atol=1e-5)


def test_export_metadata(export):
    gen = load_generator(export)
    assert gen.class_names == ["FRI", "FRII", "Compact", "Bent"]
    assert gen.resolution == 16 and len(gen.file_hash) == 16
    assert not gen.model.training
    images = draw(export, torch.tensor([0]), torch.tensor([0]), 1)
    assert images.shape == (1, 16, 16) and np.isfinite(images.numpy()).all()


def test_written_samples_are_the_drawn_images_with_their_labels_seeds_and_grids(export, tmp_path):
    from wgan.data import to_uint8
    from wgan.sampling import write_samples

    gen = load_generator(export)
    target = write_samples(gen, 10, [1, 3], seed=5, out=tmp_path / "s.npz", fmt="npz", grid=True, batch_size=4,
                           progress=False)
    assert target == tmp_path / "s.npz"
    with np.load(target) as saved:
        labels, seeds = plan(10, [1, 3], seed=5)
        assert saved["labels"].tolist() == labels.tolist() and saved["seeds"].tolist() == seeds.tolist()
        assert np.array_equal(saved["images"], to_uint8(draw(export, labels, seeds, 10)).numpy())
        assert saved["class_names"].tolist() == gen.class_names
    assert sorted(p.name for p in tmp_path.glob("grid_*.png")) == ["grid_Bent.png", "grid_FRII.png"]


def test_a_write_that_fails_names_the_file_and_what_was_kept(export, tmp_path, monkeypatch):
    from wgan import writers
    from wgan.atomic import WriteError
    from wgan.sampling import write_samples

    def full_disk(self, *args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers.PNGWriter, "write", full_disk)
    with pytest.raises(WriteError) as error:
        write_samples(load_generator(export), 4, [0], 0, tmp_path / "png", "png", progress=False)
    assert str(error.value) == (f"{tmp_path / 'png'}: writing stopped (No space left on device); the images written "
                                "before are complete")
    monkeypatch.setattr(writers.NPZWriter, "write", full_disk)
    with pytest.raises(WriteError) as error:
        write_samples(load_generator(export), 4, [0], 0, tmp_path / "s.npz", "npz", progress=False)
    assert str(error.value) == f"{tmp_path / 's.npz'}: writing stopped (No space left on device); no file was written"


def test_written_files_carry_their_provenance_and_grids_show_their_own_class(export, tmp_path):
    import h5py
    from astropy.io import fits
    from PIL import Image

    from wgan.data import to_uint8
    from wgan.sampling import write_samples

    gen = load_generator(export)
    assert gen.release is None  # a training run's export, not a release
    h5 = write_samples(gen, 6, [0, 2], 4, tmp_path / "deep" / "er" / "s.h5", "h5", progress=False)  # parents made
    with h5py.File(h5) as f:
        assert f.attrs["generator_hash"] == gen.file_hash and f.attrs["pixel_scale_arcsec"] == gen.pixel_scale_arcsec
        assert f.attrs["generator_release"] == ""
    gen = replace(gen, release="first-cv0@abababababab")  # as a released generator loads
    with h5py.File(write_samples(gen, 2, [0], 4, tmp_path / "r.h5", "h5", progress=False)) as f:
        assert f.attrs["generator_release"] == "first-cv0@abababababab"
    assert not list(tmp_path.rglob("grid_*.png"))  # no grid unless asked
    folder = write_samples(gen, 2, [1], 9, tmp_path / "fits", "fits", progress=False)
    labels, seeds = plan(2, [1], seed=9)
    floats = draw(export, labels, seeds, 2)
    with fits.open(folder / "FRII_seed0000000009.fits") as hdul:
        assert hdul[0].header["GENHASH"] == gen.file_hash and hdul[0].header["SEED"] == 9
        assert hdul[0].header["GENREL"] == "first-cv0@abababababab"
        np.testing.assert_allclose(hdul[0].data, ((floats[0].numpy() + 1) * 127.5).clip(0, 255), rtol=1e-6)
    write_samples(gen, 6, [0, 3], 0, tmp_path / "grid.npz", "npz", grid=True, progress=False)
    labels, seeds = plan(6, [0, 3], seed=0)
    bent = to_uint8(draw(export, labels[labels == 3], seeds[labels == 3], 3))
    grid = np.asarray(Image.open(tmp_path / "grid_Bent.png"))
    assert np.array_equal(grid[2:18, 2:18], bent[0].numpy())  # the first Bent image, after the 2-pixel border


def test_a_grid_lays_out_its_class_eight_to_a_row_on_white_and_progress_counts_images(export, tmp_path, capsys):
    from PIL import Image

    from wgan.data import to_uint8
    from wgan.sampling import write_samples

    write_samples(load_generator(export), 10, [3], 2, tmp_path / "s.npz", "npz", grid=True, batch_size=4)
    labels, seeds = plan(10, [3], seed=2)
    bent = to_uint8(draw(export, labels, seeds, 10)).numpy()
    grid = np.asarray(Image.open(tmp_path / "grid_Bent.png"))
    assert grid.shape == (2 + 2 * 18, 2 + 8 * 18)  # 16 px images, a 2 px border: 8 in the first row, 2 in the second
    for i, (row, col) in enumerate([(0, 0), (0, 7), (1, 0), (1, 1)]):
        index = [0, 7, 8, 9][i]
        assert np.array_equal(grid[2 + 18 * row : 18 + 18 * row, 2 + 18 * col : 18 + 18 * col], bent[index])
    assert (grid[:2] == 255).all() and (grid[20:36, 38:] == 255).all()  # borders and the empty places: white
    # progress on by default, counted in images over the whole request (plain lines where stderr is no terminal)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("wgan-sample: 0/10 img (0%)") and lines[-1].startswith("wgan-sample: 10/10 img (100%)")


def test_a_grid_holds_at_most_its_64_images_and_no_progress_means_silence(export, tmp_path, capsys):
    from PIL import Image

    from wgan.sampling import GRID_IMAGES, write_samples

    assert GRID_IMAGES == 64
    write_samples(load_generator(export), 72, [0], 0, tmp_path / "s.npz", "npz", grid=True, batch_size=32,
                  progress=False)
    assert np.asarray(Image.open(tmp_path / "grid_FRI.png")).shape == (2 + 8 * 18, 2 + 8 * 18)  # 8 rows of 8
    assert capsys.readouterr().err == ""
