"""Gate logic on hand-made before/after reports, and atomic registry updates."""

import json
import multiprocessing
import os
import shutil
import time

import pytest
from click.testing import CliRunner

from augment import gates
from wgan import registry, workdir


def report(f1_gain=0.02, accuracy_gain=0.01, kid=1.0, corners=None, behaviour_passed=True):
    gain = {c: {"mean": f1_gain, "low": f1_gain - 0.01, "high": f1_gain + 0.01, "n": 5}
            for c in ("FRI", "FRII", "Compact", "Bent")}
    gain["accuracy"] = {"mean": accuracy_gain, "low": accuracy_gain - 0.01, "high": accuracy_gain + 0.01, "n": 5}
    return {"gain": gain, "quality": {c: {"kid": kid, "kid_std": 0.1, "fid": 10.0} for c in ("FRI", "FRII", "Compact", "Bent")},
            "corners": corners or {"test-0001": True, "test-0002": False},
            "behaviour": [{"name": "invariance", "value": 0.9, "passed": behaviour_passed}]}


def test_same_results_pass():
    assert gates.passed(gates.evaluate(report(), report()))


def test_no_best_yet_has_nothing_to_regress_from():
    assert gates.evaluate(report(), None) == [] and gates.passed([])


def test_accuracy_up_but_one_class_down_fails():
    best = report()
    new = report(accuracy_gain=0.05)
    new["gain"]["FRI"] = {"mean": -0.03, "low": -0.04, "high": -0.02, "n": 5}
    result = gates.evaluate(new, best)
    failed = [g["name"] for g in result if not g["passed"]]
    assert failed == ["F1 gain FRI"]


def test_a_drop_within_the_interval_passes():
    best, new = report(f1_gain=0.02), report(f1_gain=0.015)
    assert gates.passed(gates.evaluate(new, best))


def corners(right: list[int], n: int = 20) -> dict[str, bool]:
    return {f"test-{i:04d}": i in right for i in range(n)}


def test_quality_regression_and_flipped_corner_cases_and_behaviour_fail():
    best = report(corners=corners(list(range(10))))
    new = report(kid=2.0, corners=corners([0, 1, 2, 3, 4]), behaviour_passed=False)  # 5 right -> wrong, none back
    failed = {g["name"]: g["detail"] for g in gates.evaluate(new, best) if not g["passed"]}
    assert {"KID FRI", "KID Bent", "corner cases", "behaviour: invariance"} <= set(failed)
    assert failed["corner cases"].startswith("5 flipped from right to wrong, 0 from wrong to right (sign test p 0.0312")
    assert "test-0009" in failed["corner cases"]


def test_corner_cases_flipping_both_ways_as_often_as_seed_noise_pass_and_are_named():
    """Two seeds of one classifier flip 4-19 of the released cases each way (README: augment-cml);
    a gate on any flip failed every generator."""
    best = report(corners=corners(list(range(10))))
    new = report(corners=corners(list(range(3, 16))))  # 3 right -> wrong, 6 wrong -> right
    result = gates.evaluate(new, best)
    json.dumps(result)  # report.json holds it: plain Python types only
    gate = next(g for g in result if g["name"] == "corner cases")
    assert gate["passed"] and gate["detail"].startswith("3 flipped from right to wrong, 6 from wrong to right")
    assert "test-0000, test-0001, test-0002" in gate["detail"]
    one = report(corners=corners(list(range(1, 10))))  # a single loss alone is not evidence either
    assert gates.passed(gates.evaluate(one, best))


def test_promoting_a_fold_release_keeps_its_card_metrics_and_adds_the_gates(tmp_path):
    """Promotion once replaced the release's entry, losing its card's scores (which
    `augment.predictors` reads by registry id)."""
    path = tmp_path / "registry.json"
    old = registry.add(path, "generator", "old.pt", "ab" * 32, "cmd", {}, report(), promote=True)  # promoted before `gate`
    card = {"scores": {"FRI": {"fid": 3.0}}}
    release = registry.add(path, "generator", "cv0.pt", "cd" * 32, "wgan-train --fold 0", {"split": "cv", "fold": 0},
                           card, fold_default=True)
    assert registry.gate_metrics(registry.best(registry.load(path), "generator")) == report()
    gate = report(kid=0.5)
    registry.promote_generator(path, "cv0.pt", "cd" * 32, "ignored", {}, gate, over=old["id"])
    best = registry.best(registry.load(path), "generator")
    assert best["id"] == release["id"] and best["metrics"] == card and best["command"] == "wgan-train --fold 0"
    assert best["gate"]["over"] == old["id"] and registry.gate_metrics(best) == gate
    registry.add(path, "generator", "cv0.pt", "cd" * 32, "wgan-train --fold 0", {"split": "cv", "fold": 0}, card)
    assert registry.gate_metrics(registry.best(registry.load(path), "generator")) == gate  # re-registering keeps it
    new = registry.promote_generator(path, "new.pt", "ef" * 32, "wgan-train --kimg 9", {}, gate, over=release["id"])
    assert new["metrics"] == {} and new["parent"] == release["id"] and registry.gate_metrics(new) == gate


def test_registry_add_promote_and_best(tmp_path):
    path = tmp_path / "registry.json"
    first = registry.add(path, "generator", "generator.pt", "ab" * 32, "wgan-train", {"split": "cv"}, {"kid": 1}, promote=True)
    second = registry.add(path, "generator", "new.pt", "cd" * 32, "wgan-train --kimg 9", {"split": "cv"}, {"kid": 2},
                          parent=first["id"])
    reg = registry.load(path)
    assert registry.best(reg, "generator")["id"] == first["id"] == "generator-abababababab"
    assert registry.entry(reg, second["id"])["parent"] == first["id"]
    assert registry.best(reg, "classifier") is None
    with pytest.raises(registry.RegistryError, match="unknown kind"):
        registry.add(path, "critic", "x", "00" * 32, "", {}, {})


def test_a_folds_replicas_have_their_own_names_beside_its_release(tmp_path):
    path = tmp_path / "registry.json"
    files = {}
    for seed, _digest in ((0, "ab"), (1, "cd"), (2, "ef")):
        files[seed] = tmp_path / f"cv3-s{seed}.pt"
        files[seed].write_bytes(bytes([seed]) * 8)
        registry.add(path, "generator", str(files[seed]), registry.file_digest(files[seed]), f"wgan-train --seed {seed}",
                     {"split": "cv", "fold": 3}, {}, fold_default=True, seed=seed)
    assert registry.resolve(path, "first-cv3") == registry.resolve(path, "first-cv3-s0") == files[0]
    assert [registry.resolve(path, f"first-cv3-s{s}") for s in (1, 2)] == [files[1], files[2]]
    assert registry.fold_generators(path, [3]) == {3: files[0]}  # a replica never replaces the release
    assert registry.names(registry.load(path)) == ["first-cv3", "first-cv3-s1", "first-cv3-s2"]
    with pytest.raises(registry.RegistryError, match="no released generator named first-cv3-s3; released: first-cv3, "):
        registry.resolve(path, "first-cv3-s3")


def test_a_pinned_name_keeps_naming_one_release_after_a_newer_one(tmp_path):
    path = tmp_path / "registry.json"
    old, new = tmp_path / "old.pt", tmp_path / "new.pt"
    old.write_bytes(b"old release")
    new.write_bytes(b"new release")
    for file in (old, new):
        registry.add(path, "generator", str(file), registry.file_digest(file), "wgan-train --seed 1",
                     {"split": "cv", "fold": 2}, {}, fold_default=True, seed=1)
    pin = registry.file_digest(old)[:12]
    assert registry.resolve(path, "first-cv2-s1") == new  # the name follows the newest release
    assert registry.resolve(path, f"first-cv2-s1@{pin}") == registry.resolve(path, f"first-cv2-s1@{pin[:8]}") == old
    assert registry.pinned_name(path, registry.file_digest(old)) == f"first-cv2-s1@{pin}"
    assert registry.pinned_name(path, "00" * 32) is None
    with pytest.raises(registry.RegistryError, match="at least 8 hex digits"):
        registry.resolve(path, f"first-cv2-s1@{pin[:7]}")
    with pytest.raises(registry.RegistryError, match=f"no release first-cv2@{pin}; releases of first-cv2: none"):
        registry.resolve(path, f"first-cv2@{pin}")  # the seed-1 replica is not fold 2's seed-0 release
    with pytest.raises(registry.RegistryError, match=f"releases of first-cv2-s1: first-cv2-s1@{pin}, first-cv2-s1@"):
        registry.resolve(path, "first-cv2-s1@0123456789ab")


def test_the_packaged_releases_have_pinned_names_that_resolve():
    from wgan import released

    item = registry.entry(registry.load(released.REGISTRY), registry.load(released.REGISTRY)["best"]["generator-cv0-s1"])
    name = registry.pinned(item)
    assert name == f"first-cv0-s1@{item['sha256'][:12]}"  # the seed read from the entry's recorded command
    assert released.find_generator(name) == released.CHECKPOINTS / "replicas" / "generator-cv0-s1.pt"
    assert released.release_name(item["sha256"]) == name
    from wgan.sampling import load_generator

    assert load_generator(released.find_generator(name)).release == name  # what wgan-eval, wgan-sample and augment-eval record


def test_user_releases_go_to_the_user_registry_and_are_found_before_the_packaged_ones(tmp_path, monkeypatch):
    from commands.release import release_group
    from wgan import released

    user = tmp_path / "data" / "registry.json"
    monkeypatch.setenv("RADIOGAN_REGISTRY", str(user))
    card = tmp_path / "generator-cv0-s1.json"
    shutil.copy(released.CHECKPOINTS / "replicas" / "generator-cv0-s1.json", card)
    shutil.copy(released.CHECKPOINTS / "replicas" / "generator-cv0-s1.pt", tmp_path)
    packaged = released.REGISTRY.read_text()
    done = CliRunner().invoke(release_group, ["register", str(card), "--fold-default"])
    assert done.exit_code == 0, done.output
    assert f"in {user}" in done.output and released.REGISTRY.read_text() == packaged
    assert released.find_generator("first-cv0-s1") == tmp_path / "generator-cv0-s1.pt"  # the user's copy first
    assert released.find_generator("first-cv1-s1") == released.CHECKPOINTS / "replicas" / "generator-cv1-s1.pt"
    installed = tmp_path / "venv" / "lib" / "site-packages" / "radiogan_models" / "registry.json"
    refused = CliRunner().invoke(release_group, ["register", str(card), "--registry", str(installed)])
    assert refused.exit_code == 1 and "the installed package's registry, which is read-only" in refused.output
    assert not installed.exists() and "Traceback" not in refused.output


def test_interrupted_registry_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "registry.json"
    registry.add(path, "generator", "g.pt", "ab" * 32, "cmd", {}, {}, promote=True)
    before = path.read_text()

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        registry.add(path, "generator", "h.pt", "cd" * 32, "cmd", {}, {}, promote=True)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.json", "registry.json.lock"]
    assert registry.load(path)["best"]["generator"] == "generator-abababababab"


def _register(path, worker):
    for i in range(3):
        registry.add(path, "generator", f"g{worker}{i}.pt", f"{worker}{i}" * 32, "cmd", {}, {})


@pytest.mark.skipif(workdir.fcntl is None, reason="no advisory file locks on this platform")
def test_registrations_at_the_same_time_all_land(tmp_path, monkeypatch):
    """Two releases registered at once: each reads, adds and renames; without the lock the later
    rename drops the entries the other wrote since it read (a slow read makes the overlap certain)."""
    path = tmp_path / "registry.json"
    registry.add(path, "generator", "first.pt", "ff" * 32, "cmd", {}, {})
    load = registry.load

    def slow_load(p):
        loaded = load(p)
        time.sleep(0.1)
        return loaded

    monkeypatch.setattr(registry, "load", slow_load)
    context = multiprocessing.get_context("fork")  # the children keep the slow read
    workers = [context.Process(target=_register, args=(path, w)) for w in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert [w.exitcode for w in workers] == [0, 0]
    ids = {e["id"] for e in load(path)["entries"]}
    assert ids == {"generator-" + ("ff" * 6)} | {f"generator-{(f'{w}{i}' * 6)}" for w in (1, 2) for i in range(3)}
