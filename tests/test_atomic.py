import os

import pytest

from wgan.atomic import atomic_path, write_text


def test_atomic_write_replaces_whole_file_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text() == "second"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        # beside the target: a rename within one file system is atomic (across two it is a copy)
        assert tmp.parent == target.parent and tmp.name.startswith(".file.txt.")
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_a_failed_write_is_named_by_the_short_cause():
    from wgan.atomic import WriteError, reason

    assert reason(OSError(28, "No space left on device")) == "No space left on device"
    assert reason(RuntimeError("  disk quota exceeded\n  at block 7\n")) == "disk quota exceeded"
    assert reason(OSError("no strerror here\nsecond line")) == "no strerror here"
    error = WriteError("samples.npz: writing stopped (No space left on device); nothing kept")
    assert str(error) == "samples.npz: writing stopped (No space left on device); nothing kept"
    assert isinstance(error, OSError)


def test_the_umask_is_read_without_being_changed():
    from wgan.atomic import _umask

    before = os.umask(0o027)
    try:
        assert _umask() == 0o027 and _umask() == 0o027
    finally:
        os.umask(before)


def test_a_written_file_gets_the_mode_the_umask_gives_a_plain_open(tmp_path):
    before = os.umask(0o007)
    try:
        write_text(tmp_path / "shared.txt", "x")
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(before)
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o660
