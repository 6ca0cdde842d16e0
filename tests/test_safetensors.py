"""Releases as safetensors files: readable by the safetensors library alone, identical samples,
damage refused, and the older .pt releases still loading."""

import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file

from classifier.export import load_classifier
from commands.release import release_group
from wgan import checkpoint, registry, safefile
from wgan.config import TrainConfig
from wgan.networks import Generator
from wgan.released import CHECKPOINTS, EXTRACTOR, GENERATOR
from wgan.sampling import generate, load_generator, plan


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """fold 0's released generator, released again as a safetensors file with its card"""
    folder = tmp_path_factory.mktemp("release")
    scores = folder / "scores.json"
    card = json.loads((CHECKPOINTS / "generator.json").read_text())
    scores.write_text(json.dumps({"generator": {"file_hash": card["sha256"][:16]}, "extractor": card["extractor"],
                                  "scores": {}, "floor": {}, "above_floor": card["above_floor"]}))
    done = CliRunner().invoke(release_group, ["generator", str(GENERATOR), str(folder / "generator-cv0"),
                                              "--command", "wgan-train ...", "--scores", str(scores)])
    assert done.exit_code == 0, done.output
    return folder / "generator-cv0.safetensors"


def samples(model) -> torch.Tensor:
    labels, seeds = plan(16, [0, 1, 2, 3], seed=7)
    return torch.cat([images for images, _, _ in generate(model, labels, seeds)])


def test_the_safetensors_library_alone_rebuilds_the_generator_and_its_samples(release):
    with safe_open(str(release), framework="pt") as handle:  # no radiogan loader, no pickle
        header = json.loads(handle.metadata()["radiogan"])
    weights = {name.removeprefix("state_dict/"): t for name, t in load_file(str(release)).items()}
    model = Generator(TrainConfig.from_json(header["config"]).network)
    model.load_state_dict(weights)
    model.eval()
    assert header["class_names"] == ["FRI", "FRII", "Compact", "Bent"] and header["pixel_scale_arcsec"] > 0
    assert torch.equal(samples(model), samples(load_generator(GENERATOR).model))


def test_a_safetensors_release_has_a_card_a_digest_and_the_same_content(release):
    card = json.loads(release.with_suffix(".json").read_text())
    assert card["file"] == release.name and card["sha256"] == registry.file_digest(release)
    assert card["scored_sha256"] == registry.file_digest(GENERATOR)  # the export the scores belong to
    old, new = (checkpoint.load(p, checkpoint.GENERATOR_EXPORT) for p in (GENERATOR, release))
    assert new["config"] == old["config"] and new["kimg"] == old["kimg"]
    assert all(torch.equal(old["state_dict"][k], new["state_dict"][k]) for k in old["state_dict"])
    assert load_generator(release).file_hash == card["sha256"][:16]


def test_a_changed_byte_in_a_safetensors_release_is_refused_as_damaged(release, tmp_path):
    data = bytearray(release.read_bytes())
    data[-100] ^= 0x01  # inside the last tensor
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError, match="damaged: its content does not match the digest"):
        checkpoint.load(damaged, checkpoint.GENERATOR_EXPORT)
    damaged.write_bytes(release.read_bytes()[:1000])
    with pytest.raises(checkpoint.CheckpointError, match="not a readable safetensors file"):
        checkpoint.load(damaged, checkpoint.GENERATOR_EXPORT)


def test_a_foreign_safetensors_file_is_refused_by_name(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(checkpoint.CheckpointError, match="without radiogan's metadata"):
        checkpoint.load(path, checkpoint.GENERATOR_EXPORT)


def test_a_composite_round_trips_through_safetensors(tmp_path):
    payload = checkpoint.load(GENERATOR, checkpoint.GENERATOR_EXPORT)
    composite = {k: v for k, v in payload.items() if k != "state_dict"} | {"members": [payload["state_dict"]] * 2}
    checkpoint.save(composite, tmp_path / "composite.safetensors")
    back = checkpoint.load(tmp_path / "composite.safetensors", checkpoint.GENERATOR_EXPORT)
    assert len(back["members"]) == 2 and "state_dict" not in back
    assert all(torch.equal(back["members"][1][k], v) for k, v in payload["state_dict"].items())


def test_a_classifier_release_is_a_safetensors_file_that_loads(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(EXTRACTOR, run / "model.pt")
    payload = checkpoint.load(EXTRACTOR, checkpoint.CLASSIFIER_EXPORT)
    (run / "metrics.json").write_text(json.dumps({**json.loads(payload["metrics"]), "model": payload["model"],
                                                  "data": json.loads(payload["data"]), "data_fingerprint": "x",
                                                  "counts": {}, "best_epoch": 1, "settings": {}}))
    done = CliRunner().invoke(release_group, ["classifier", str(run), str(tmp_path / "extractor"), "--command", "c"])
    assert done.exit_code == 0, done.output
    released = load_classifier(tmp_path / "extractor.safetensors")
    image = torch.zeros(1, 1, released.resolution, released.resolution)
    assert torch.equal(released.model(image), load_classifier(EXTRACTOR).model(image))
    assert safefile.is_safetensors(tmp_path / "extractor.safetensors")
