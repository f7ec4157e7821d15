"""Atomic writes: the target is either the old or the new content, temporaries never pile up."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from sklearn_imgcls._core.atomic import atomic_folder, atomic_path, remove_stale_partials, write_bytes_atomically


def _litter(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if ".partial-" in name)


def test_a_write_replaces_the_target_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "model.joblib"
    target.write_bytes(b"old")
    with atomic_path(target) as temporary:
        assert os.path.dirname(temporary) == str(tmp_path)
        assert os.path.basename(temporary).startswith(".model.joblib.partial-")
        assert temporary.endswith(".joblib")  # writers that pick their format by extension see the same one
        with open(temporary, "wb") as handle:
            handle.write(b"new")
        assert target.read_bytes() == b"old"  # nothing visible before the block ends
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["model.joblib"]


def test_new_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    write_bytes_atomically(tmp_path / "a.bin", b"x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(tmp_path / "a.bin").st_mode & 0o777 == 0o666 & ~mask
    os.chmod(tmp_path / "a.bin", 0o640)
    write_bytes_atomically(tmp_path / "a.bin", b"y")  # a rewrite keeps the file's own permissions
    assert os.stat(tmp_path / "a.bin").st_mode & 0o777 == 0o640


def test_a_writer_that_recreates_the_file_privately_still_gives_the_usual_permissions(tmp_path):
    """safetensors (and others) delete and recreate the file they are given, as 0600."""
    mask = os.umask(0o022)
    os.umask(mask)
    target = tmp_path / "model.safetensors"
    with atomic_path(target) as temporary:
        os.remove(temporary)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"data")
        os.close(fd)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~mask


def test_a_full_disk_keeps_the_old_file_and_names_the_target(tmp_path):
    target = tmp_path / "model.joblib"
    target.write_bytes(b"old")

    def writer(path):
        with open(path, "wb") as handle:
            handle.write(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as info:
        with atomic_path(target) as temporary:
            writer(temporary)
    assert info.value.errno == errno.ENOSPC
    message = str(info.value)
    assert str(target) in message and "No space left on device" in message and "free some disk space" in message
    assert ".partial-" not in message
    assert target.read_bytes() == b"old"
    assert _litter(tmp_path) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_write_leaves_no_temporary(tmp_path, error):
    target = tmp_path / "weights.pt"
    with pytest.raises(error):
        with atomic_path(target) as temporary:
            with open(temporary, "wb") as handle:
                handle.write(b"partial")
            raise error()
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_is_named(tmp_path):
    target = tmp_path / "no" / "such" / "model.joblib"
    with pytest.raises(FileNotFoundError, match=r"Cannot write .*model\.joblib.*folder .*such.* does not exist"):
        write_bytes_atomically(target, b"x")


def test_an_unwritable_folder_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o555)
    if os.access(folder, os.W_OK):  # root ignores permissions: fail where the temporary is created instead
        def refuse(*args, dir=None, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.path.join(dir, ".x.partial-1"))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        with pytest.raises(PermissionError) as info:
            write_bytes_atomically(folder / "model.joblib", b"x")
    finally:
        os.chmod(folder, 0o755)
    message = str(info.value)
    assert "locked/model.joblib" in message and "Permission denied" in message and "folder you may write" in message
    assert ".partial-" not in message
    assert os.listdir(folder) == []


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from sklearn_imgcls._core.atomic import atomic_path
    with atomic_path(sys.argv[1]) as temporary:
        open(temporary, "wb").write(b"half")
        print(temporary, flush=True)
        time.sleep(60)
    """
)


def _writer_in_another_process(target):
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(target)], stdout=subprocess.PIPE, text=True)
    temporary = process.stdout.readline().strip()
    assert os.path.exists(temporary)
    return process, temporary


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "model.joblib"
    alive, alive_temporary = _writer_in_another_process(target)
    killed, killed_temporary = _writer_in_another_process(target)
    try:
        os.kill(killed.pid, signal.SIGKILL)  # no cleanup code runs
        killed.wait(timeout=30)
        assert os.path.exists(killed_temporary)
        write_bytes_atomically(target, b"new")
        assert not os.path.exists(killed_temporary)
        assert os.path.exists(alive_temporary)  # a writer still at work keeps its temporary
        assert remove_stale_partials(target) == []
    finally:
        alive.kill()
        alive.wait(timeout=30)
    assert remove_stale_partials(target) == [alive_temporary]
    assert os.listdir(tmp_path) == ["model.joblib"]
    assert target.read_bytes() == b"new"


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "run"
    with atomic_folder(target) as temporary:
        (open(os.path.join(temporary, "a.txt"), "w")).close()
        assert not target.exists()
    assert sorted(os.listdir(target)) == ["a.txt"]
    with pytest.raises(OSError, match=r"Cannot write .*run'.*No space left"):
        with atomic_folder(target) as temporary:
            with open(os.path.join(temporary, "b.txt"), "w"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert sorted(os.listdir(target)) == ["a.txt"]  # the old folder is intact
    with atomic_folder(target) as temporary:
        open(os.path.join(temporary, "c.txt"), "w").close()
    assert sorted(os.listdir(target)) == ["c.txt"]  # replaced as a whole
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_a_stale_folder_temporary_is_removed(tmp_path):
    target = tmp_path / "run"
    stale = tmp_path / ".run.partial-abc"
    stale.mkdir()
    (stale / "params.pt").write_bytes(b"x")
    old = time.time() - 10
    os.utime(stale, (old, old))
    with atomic_folder(target) as temporary:
        open(os.path.join(temporary, "a.txt"), "w").close()
    assert sorted(os.listdir(tmp_path)) == ["run"]
