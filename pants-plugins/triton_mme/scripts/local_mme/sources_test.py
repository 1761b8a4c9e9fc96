from __future__ import annotations

from pathlib import Path

import pytest
from triton_mme.scripts.local_mme.sources import DirectorySource, SourceError


def write(path: Path, content: bytes = b"tarball") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def test_target_model_is_the_file_name_below_the_directory(tmp_path: Path) -> None:
    write(tmp_path / "models/a/a_1.0.tar.gz", b"a")
    write(tmp_path / "models/b/b_2.tar.gz", b"b")
    source = DirectorySource(tmp_path)
    assert source.list_tarballs(limit=10) == ["a_1.0.tar.gz", "b_2.tar.gz"]
    size = source.fetch("b_2.tar.gz", tmp_path / "fetched", max_bytes=10)
    assert size == 1 and (tmp_path / "fetched").read_bytes() == b"b"


def test_unknown_and_escaping_target_models_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "a_1.tar.gz")
    source = DirectorySource(tmp_path)
    with pytest.raises(SourceError, match="No tarball 'c_1.tar.gz'"):
        source.fetch("c_1.tar.gz", tmp_path / "x", max_bytes=100)
    with pytest.raises(SourceError, match="not a relative tarball path") as refused:
        source.fetch("../a_1.tar.gz", tmp_path / "x", max_bytes=100)
    error: SourceError = refused.value
    assert error.status == 400


def test_two_tarballs_with_one_name_are_an_error(tmp_path: Path) -> None:
    write(tmp_path / "x/m_1.tar.gz")
    write(tmp_path / "y/m_1.tar.gz")
    with pytest.raises(SourceError, match="Two tarballs named m_1.tar.gz"):
        DirectorySource(tmp_path).list_tarballs(limit=10)
