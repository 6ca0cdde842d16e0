"""The training state on its own, without the loop: the batch order, fresh state from a config,
its checkpoint form and the generator export. Fast enough to run for every mutant of
wgan/training_state.py (docs/mutation.md); tests/test_training.py runs the loop and its resumes."""

import math

import pytest
import torch

from tests.helpers import tiny_config
from wgan import checkpoint
from wgan.config import OptimConfig
from wgan.training_state import (
    BatchSampler,
    build_state,
    differences,
    generator_export,
    restore,
    to_checkpoint,
)

CPU = torch.device("cpu")


def draw(sampler: BatchSampler, n: int) -> list[list[int]]:
    return [sampler.next().tolist() for _ in range(n)]


def test_each_epoch_shows_every_image_once_and_a_batch_can_span_two_epochs():
    sampler = BatchSampler(size=10, batch_size=4, seed=3)
    shown = sum(draw(sampler, 5), [])  # 20 indices: two whole epochs
    assert all(len(batch) == 4 for batch in draw(BatchSampler(10, 4, 3), 5))
    assert sorted(shown[:10]) == list(range(10)) and sorted(shown[10:]) == list(range(10))
    assert shown[:10] != shown[10:]  # each epoch its own order
    assert sampler.state_dict() == {"epoch": 2, "position": 0}
    sampler.next()
    assert sampler.state_dict() == {"epoch": 2, "position": 4}


def test_a_batch_larger_than_the_data_set_wraps_over_epochs():
    sampler = BatchSampler(size=3, batch_size=7, seed=0)
    batch = sampler.next().tolist()
    assert len(batch) == 7 and sorted(batch[:3]) == sorted(batch[3:6]) == [0, 1, 2]
    assert sampler.state_dict() == {"epoch": 2, "position": 1}


def test_the_order_is_a_function_of_seed_and_epoch_alone():
    torch.manual_seed(0)
    a = draw(BatchSampler(50, 10, seed=7), 12)
    torch.manual_seed(1)  # the global random state plays no part
    assert draw(BatchSampler(50, 10, seed=7), 12) == a
    assert draw(BatchSampler(50, 10, seed=8), 12) != a
    # seed s, epoch e+1 is not seed s+1, epoch e (the two streams must not overlap)
    assert draw(BatchSampler(50, 10, seed=1), 5) != draw(BatchSampler(50, 10, seed=0), 10)[5:]


def test_each_epochs_order_is_drawn_from_a_generator_seeded_by_seed_and_epoch():
    """The derivation is part of the checkpoint format: a run resumed by a later version must
    draw the batches the first part would have drawn."""
    sampler = BatchSampler(size=10, batch_size=10, seed=3)
    for epoch in range(3):
        expected = torch.randperm(10, generator=torch.Generator().manual_seed(3 * 1_000_003 + epoch))
        assert torch.equal(sampler.next(), expected)


def test_a_sampler_restored_from_its_state_draws_what_the_original_draws_next():
    original = BatchSampler(13, 5, seed=2)
    draw(original, 4)  # part-way through the second epoch
    state = original.state_dict()
    assert state == {"epoch": 1, "position": 7}
    restored = BatchSampler(13, 5, seed=2)
    restored.load_state_dict({key: str(value) for key, value in state.items()})  # as JSON may give them back
    assert draw(restored, 9) == draw(original, 9)


def test_fresh_state_is_seeded_and_takes_every_setting_from_the_config():
    cfg = tiny_config(optim=OptimConfig(lr_g=2e-4, lr_d=3e-4, beta1=0.5, beta2=0.99), batch_size=6,
                      ema_half_life_kimg=7.0, ema_rampup=0.2)
    torch.manual_seed(123)
    state = build_state(cfg, dataset_size=20, device=CPU)
    again = build_state(cfg, dataset_size=20, device=CPU)
    assert differences(state.G.state_dict(), again.G.state_dict()) == []
    assert differences(state.D.state_dict(), again.D.state_dict()) == []
    other = build_state(tiny_config(seed=cfg.seed + 1), dataset_size=20, device=CPU)
    assert differences(state.G.state_dict(), other.G.state_dict()) != []
    assert differences(state.D.state_dict(), other.D.state_dict()) != []
    assert torch.equal(state.rng.get_state(), torch.Generator().manual_seed(cfg.seed).get_state())
    assert (state.step, state.nimg, state.best_score) == (0, 0, math.inf)
    for optimizer, model, lr in ((state.opt_g, state.G, 2e-4), (state.opt_d, state.D, 3e-4)):
        group = optimizer.param_groups[0]
        assert isinstance(optimizer, torch.optim.Adam)
        assert group["lr"] == lr and group["betas"] == (0.5, 0.99)
        assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]
    assert (state.ema.half_life_kimg, state.ema.rampup) == (7.0, 0.2)
    assert differences(state.ema.model.state_dict(), state.G.state_dict()) == []  # a copy of the fresh generator
    assert state.ema.model is not state.G
    assert (state.sampler.size, state.sampler.batch_size, state.sampler.seed) == (20, 6, cfg.seed)


def advance(state, steps: int = 2) -> None:
    """Change everything a checkpoint holds, as training would."""
    for _ in range(steps):
        for model, optimizer in ((state.G, state.opt_g), (state.D, state.opt_d)):
            optimizer.zero_grad()
            sum(p.square().sum() for p in model.parameters()).backward()
            optimizer.step()
        state.ema.update(state.G, images_seen=state.nimg + 8, batch_size=8)
        torch.rand(3, generator=state.rng)
        state.sampler.next()
        state.step, state.nimg = state.step + 1, state.nimg + 8
    state.best_score = 12.5


def test_a_checkpoint_restored_into_fresh_state_holds_everything_the_run_had(tmp_path):
    cfg = tiny_config()
    state = build_state(cfg, dataset_size=20, device=CPU)
    advance(state, 3)
    saved = to_checkpoint(state, cfg, "data-abc")
    assert saved["format"] == checkpoint.TRAINING_STATE and saved["version"] == checkpoint.FORMAT_VERSION
    assert saved["config"] == cfg.to_json() and saved["data_fingerprint"] == "data-abc"
    assert (saved["step"], saved["nimg"], saved["best_score"]) == (3, 24, 12.5)
    assert saved["sampler"] == state.sampler.state_dict()
    assert differences(saved["generator"], state.G.state_dict()) == []
    assert differences(saved["critic"], state.D.state_dict()) == []
    assert differences(saved["generator_ema"], state.ema.model.state_dict()) == []
    assert differences(saved["generator"], saved["generator_ema"]) != []  # two different things kept
    fresh = build_state(cfg, dataset_size=20, device=CPU)
    assert differences(to_checkpoint(fresh, cfg, "data-abc"), saved) != []
    # through the file, as a resumed run reads it (the dict itself shares tensors with the live state)
    checkpoint.save(saved, tmp_path / "state.pt")
    restore(fresh, checkpoint.load(tmp_path / "state.pt", checkpoint.TRAINING_STATE))
    assert differences(to_checkpoint(fresh, cfg, "data-abc"), saved) == []
    # and the two go on alike: the same batches, random draws and optimizer steps
    advance(state)
    advance(fresh)
    assert differences(to_checkpoint(fresh, cfg, "data-abc"), to_checkpoint(state, cfg, "data-abc")) == []


def test_a_checkpoint_from_before_best_scores_restores_with_none_yet():
    cfg = tiny_config()
    state = build_state(cfg, dataset_size=20, device=CPU)
    advance(state, 1)
    saved = to_checkpoint(state, cfg, "d")
    del saved["best_score"]
    fresh = build_state(cfg, dataset_size=20, device=CPU)
    fresh.best_score = 1.0
    restore(fresh, saved)
    assert fresh.best_score == math.inf and fresh.step == 1


def test_the_generator_export_is_the_averaged_generator_and_how_to_rebuild_it():
    cfg = tiny_config()
    state = build_state(cfg, dataset_size=20, device=CPU)
    advance(state, 2)
    export = generator_export(state, cfg, "data-abc", pixel_scale=1.8, class_names=("FRI", "FRII"))
    assert export["format"] == checkpoint.GENERATOR_EXPORT and export["version"] == checkpoint.FORMAT_VERSION
    assert differences(export["state_dict"], state.ema.model.state_dict()) == []
    assert differences(export["state_dict"], state.G.state_dict()) != []
    assert export["class_names"] == ["FRI", "FRII"] and export["pixel_scale_arcsec"] == 1.8
    assert export["config"] == cfg.to_json() and export["data_fingerprint"] == "data-abc"
    assert export["step"] == 2 and export["kimg"] == pytest.approx(0.016)
