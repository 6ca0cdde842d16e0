"""Per-class checkpoint selection: candidates kept at each evaluation, the choice made on the
logged training-split scores only, and the composite export used like any other generator."""

import json

import pytest
import torch
from click.testing import CliRunner

from commands.wgan import select_command
from tests.helpers import synthetic_set, tiny_config
from wgan import checkpoint
from wgan.networks import PerClassGenerator
from wgan.sampling import generate, load_generator
from wgan.selection import SelectionError, choose, write_composite
from wgan.training_loop import candidate_path, train

CLASSES = ["FRI", "FRII", "Compact", "Bent"]
# per-class FID at each evaluation: FRI best at 2, FRII at 4, Compact at 6, Bent at 4
FID = {2: [1.0, 5.0, 5.0, 5.0], 4: [3.0, 1.0, 4.0, 2.0], 6: [2.0, 2.0, 1.0, 3.0]}


def scores_callback(step, state):
    if step not in FID:
        return None
    stats = {f"Metrics/fid_{c}": v for c, v in zip(CLASSES, FID[step])}
    return stats | {"Metrics/kid_class_mean": sum(FID[step])}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    train(tiny_config(iters=6), synthetic_set(), path, callbacks=[scores_callback],
          best_metric="Metrics/kid_class_mean", progress=False)
    return path


def test_every_evaluation_keeps_its_candidate(run_dir):
    steps = [checkpoint.load(candidate_path(run_dir, s), checkpoint.GENERATOR_EXPORT)["step"] for s in FID]
    assert steps == list(FID)


def test_each_class_gets_its_best_candidate(run_dir):
    chosen = choose(run_dir, "fid", CLASSES)
    assert {c: chosen[c]["step"] for c in CLASSES} == {"FRI": 2, "FRII": 4, "Compact": 6, "Bent": 4}


def test_composite_export_draws_each_class_from_its_member(run_dir, tmp_path):
    out = tmp_path / "per-class.pt"
    write_composite(run_dir, "fid", out)
    composite = load_generator(out)
    assert isinstance(composite.model, PerClassGenerator)
    labels, seeds = torch.tensor([0, 1, 2, 3, 1, 0]), torch.arange(6)
    images = torch.cat([x for x, _, _ in generate(composite.model, labels, seeds)])
    for c, step in enumerate([2, 4, 6, 4]):
        member = load_generator(candidate_path(run_dir, step))
        alone = torch.cat([x for x, _, _ in generate(member.model, labels[labels == c], seeds[labels == c])])
        assert torch.equal(images[labels == c], alone)
    # per sample, whatever the batch holds
    single = torch.cat([x for x, _, _ in generate(composite.model, labels[4:5], seeds[4:5])])
    assert torch.equal(single, images[4:5])
    assert composite.config.data == load_generator(candidate_path(run_dir, 2)).config.data
    assert not any(p.requires_grad for p in composite.model.parameters())  # loaded for sampling only

    from wgan import checkpoint

    payload = checkpoint.load(out, checkpoint.GENERATOR_EXPORT)
    payload["members"] = payload["members"][:3]  # a composite missing a class's member
    checkpoint.save(payload, tmp_path / "short.pt")
    with pytest.raises(checkpoint.CheckpointError, match="generator export does not match this network code"):
        load_generator(tmp_path / "short.pt")


def test_select_command_reports_the_choice_and_refuses_a_run_without_candidates(run_dir, tmp_path):
    result = CliRunner().invoke(select_command, ["--run-dir", str(run_dir), "--out", str(tmp_path / "c.pt")])
    assert result.exit_code == 0, result.output
    assert "FRI: iteration 2" in result.output and (tmp_path / "c.pt").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "stats.jsonl").write_text(json.dumps({"step": 2, "Loss/critic": 1.0}) + "\n")
    result = CliRunner().invoke(select_command, ["--run-dir", str(empty)])
    assert result.exit_code == 1 and "no candidate generators" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(SelectionError, match="unknown score"):
        choose(run_dir, "psnr", CLASSES)
