"""Resumable classifier training (classifier.fitstate): an interrupted `fit` goes on from its last
saved epoch to the result of an uninterrupted one, bit for bit; a state of another training, or a
damaged one, is not resumed; a finished state is the result."""

import pytest
import torch

from classifier.engine import TrainSettings, fit
from classifier.fitstate import FitState
from tests.helpers import synthetic_set
from tests.test_classifier_training import CPU

# augmentations, a warm-up and cosine schedule, and dropout: every random stream and every piece of
# optimizer state a resumed training has to give back
SETTINGS = TrainSettings(epochs=7, lr=0.05, warmup_epochs=1, batch_size=8, seed=3, rotate=True, dihedral=True)


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.Dropout(0.3), torch.nn.ReLU(),
                               torch.nn.Linear(16, 4))


class Interrupted(Exception):
    pass


def interrupt_at(epoch):
    def log(e, row):
        if e == epoch:
            raise Interrupted
    return log


def train_valid():
    return synthetic_set(24, size=8), synthetic_set(8, size=8, seed=1)


def assert_same_training(a, b):
    assert a.best_epoch == b.best_epoch and a.history == b.history
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_an_interrupted_fit_goes_on_from_its_last_saved_epoch_to_the_same_result(tmp_path):
    train, valid = train_valid()
    straight = fit(model(), train, valid, SETTINGS, CPU, progress=False)
    state = FitState(tmp_path / "state.pt", "this training", every=2)
    with pytest.raises(Interrupted):  # epoch 5 trained, not saved: the state holds epoch 4
        fit(model(), train, valid, SETTINGS, CPU, progress=False, state=state, log=interrupt_at(5))
    assert state.epoch() == 4
    torch.manual_seed(1234)  # a new process: torch's global stream (dropout) is elsewhere
    logged = []
    resumed = fit(model(), train, valid, SETTINGS, CPU, progress=False, state=state,
                  log=lambda e, row: logged.append(e))
    assert logged == [5, 6, 7]
    assert_same_training(resumed, straight)
    assert state.epoch() == 7  # kept until the caller has kept the result: then it is the result
    again = fit(model(), train, valid, SETTINGS, CPU, progress=False, state=state, log=interrupt_at(1))
    assert_same_training(again, straight)


def test_a_training_stopped_by_patience_stays_stopped_when_resumed(tmp_path):
    train, valid = train_valid()
    settings = TrainSettings(epochs=10, lr=0.0, warmup_epochs=0, batch_size=8, patience=3)
    state = FitState(tmp_path / "state.pt", "k", every=100)
    first = fit(model(), train, valid, settings, CPU, progress=False, state=state)
    assert len(first.history) == 4 and state.epoch() == 4  # saved when it stopped, not only every 100 epochs
    logged = []
    fit(model(), train, valid, settings, CPU, progress=False, state=state, log=lambda e, row: logged.append(e))
    assert logged == []


def test_a_state_of_another_training_or_a_damaged_one_starts_from_the_first_epoch(tmp_path, capsys):
    train, valid = train_valid()
    path = tmp_path / "state.pt"
    with pytest.raises(Interrupted):
        fit(model(), train, valid, SETTINGS, CPU, progress=False, state=FitState(path, "a", every=1),
            log=interrupt_at(3))
    logged = []
    fit(model(), train, valid, SETTINGS, CPU, progress=False, state=FitState(path, "b", every=1),
        log=lambda e, row: logged.append(e))
    assert logged == list(range(1, 8))
    assert f"note: {path} is the state of another training; this one starts from its first epoch" in capsys.readouterr().err
    path.write_bytes(path.read_bytes()[:200])
    logged.clear()
    fit(model(), train, valid, SETTINGS, CPU, progress=False, state=FitState(path, "b", every=1),
        log=lambda e, row: logged.append(e))
    assert logged == list(range(1, 8)) and "training starts from its first epoch" in capsys.readouterr().err


def test_a_state_is_refused_where_it_could_not_give_the_same_result(tmp_path):
    from wgan.distributed import Shard

    train, valid = train_valid()
    state = FitState(tmp_path / "state.pt", "k")
    with pytest.raises(ValueError, match="^a resumable fit runs in one process; under torchrun, train without a state$"):
        fit(model(), train, valid, SETTINGS, CPU, progress=False, state=state, shard=Shard(rank=0, world=2))
    with pytest.raises(ValueError, match="per-batch image source with state_dict"):
        fit(model(), train, valid, SETTINGS, CPU, progress=False, state=state, fresh=lambda labels: None)
    assert not state.path.exists()
