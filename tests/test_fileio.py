"""Atomic writes keep the permissions a plain write would give (the umask applies), or the replaced file's."""

import os
import stat

from intent_edge.fileio import atomic_directory, atomic_path


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_and_directories_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "report.md") as temporary:
            temporary.write_text("x")
        with atomic_directory(tmp_path / "bundle") as staging:
            (staging / "manifest.json").write_text("{}")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "report.md") == 0o644
    assert mode(tmp_path / "bundle") == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "report.md"]  # nothing left beside them


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "scored.csv"
    target.write_text("old")
    target.chmod(0o640)
    with atomic_path(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new" and mode(target) == 0o640
