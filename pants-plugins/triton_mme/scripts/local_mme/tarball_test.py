from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from triton_mme.scripts.local_mme.tarball import (
    ExtractionLimits,
    TarballError,
    check_layout,
    extract_model_tarball,
)

CONFIG = b'backend: "python"\n'
ENSEMBLE = b'platform: "ensemble"\nensemble_scheduling { step [{ model_name: "member" }] }\n'


def _tarball(path: Path, *members: tuple[str, bytes | None, dict]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data, extra in members:
            info = tarfile.TarInfo(name)
            info.size = len(data or b"")
            for key, value in extra.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[str, bytes, dict]:
    return (name, data, {})


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[str, None, dict]:
    return (name, None, {"type": kind, "linkname": target})


def _refused(tmp_path: Path, *members: tuple[str, bytes | None, dict]) -> str:
    tarball = _tarball(tmp_path / "m_1.tar.gz", *members)
    with pytest.raises(TarballError) as error:
        extract_model_tarball(tarball, tmp_path / "out")
    assert not any((tmp_path / "out").rglob("*")), "nothing may be left behind"
    assert not (tmp_path / "escaped").exists()
    return str(error.value)


def test_single_model(tmp_path: Path) -> None:
    tarball = _tarball(
        tmp_path / "m_1.tar.gz",
        ("./", None, {"type": tarfile.DIRTYPE}),
        _file("./m/config.pbtxt", CONFIG),
        _file("./m/1/model.py", b"print()"),
    )
    extracted = extract_model_tarball(tarball, tmp_path / "out")
    assert extracted.layout.model_dirs == ("m",)
    assert extracted.layout.served_model == "m"
    assert extracted.extracted_bytes == len(CONFIG) + len(b"print()")
    assert (tmp_path / "out/m/1/model.py").read_bytes() == b"print()"


def test_ensemble_with_members_and_an_internal_link(tmp_path: Path) -> None:
    tarball = _tarball(
        tmp_path / "p_1.tar.gz",
        _file("pipe/config.pbtxt", ENSEMBLE),
        ("pipe/1", None, {"type": tarfile.DIRTYPE}),
        _file("member/config.pbtxt", CONFIG),
        _file("member/1/model.py"),
        _link("member/1/alias.py", "model.py"),
        _link("member/1/copy.py", "member/1/model.py", tarfile.LNKTYPE),
    )
    extracted = extract_model_tarball(tarball, tmp_path / "out")
    assert extracted.layout.ensemble == "pipe"
    assert extracted.layout.model_dirs == ("member", "pipe")
    assert (tmp_path / "out/pipe/1").is_dir()
    assert (tmp_path / "out/member/1/alias.py").read_bytes() == b"x"
    assert (tmp_path / "out/member/1/copy.py").read_bytes() == b"x"


def test_refuses_parent_member(tmp_path: Path) -> None:
    message = _refused(tmp_path, _file("m/config.pbtxt", CONFIG), _file("m/../../escaped"))
    assert "m_1.tar.gz: member 'm/../../escaped' climbs out of the tar root" in message


def test_refuses_absolute_member(tmp_path: Path) -> None:
    message = _refused(tmp_path, _file("m/config.pbtxt", CONFIG), _file("/tmp/abs"))
    assert "'/tmp/abs' is an absolute path" in message


@pytest.mark.parametrize("target", ["../../../escaped", "/etc/passwd", "../../.."])
def test_refuses_symlink_leaving_the_tarball(tmp_path: Path, target: str) -> None:
    message = _refused(tmp_path, _file("m/config.pbtxt", CONFIG), _link("m/1/l", target))
    assert "symlink 'm/1/l'" in message


def test_refuses_writing_through_a_symlink(tmp_path: Path) -> None:
    message = _refused(
        tmp_path,
        _file("m/config.pbtxt", CONFIG),
        _link("m/dir", "."),
        _file("m/dir/model.py"),
    )
    assert "'m/dir/model.py' is stored under a symlink" in message


def test_refuses_hard_link_to_outside(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, _file("m/config.pbtxt", CONFIG), _link("m/h", "/etc/passwd", tarfile.LNKTYPE)
    )
    assert "is an absolute path" in message


def test_refuses_devices(tmp_path: Path) -> None:
    message = _refused(
        tmp_path, _file("m/config.pbtxt", CONFIG), ("m/dev", None, {"type": tarfile.CHRTYPE})
    )
    assert "'m/dev' is a device, FIFO or other special file" in message


def test_refuses_bad_gzip(tmp_path: Path) -> None:
    good = _tarball(tmp_path / "good.tar.gz", _file("m/config.pbtxt", CONFIG * 100))
    corrupt = tmp_path / "m_1.tar.gz"
    corrupt.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(TarballError, match="m_1.tar.gz: not a readable gzip-compressed tar"):
        extract_model_tarball(corrupt, tmp_path / "out")
    plain = tmp_path / "plain.tar.gz"
    plain.write_bytes(b"not gzip at all")
    with pytest.raises(TarballError, match="not a readable gzip-compressed tar"):
        extract_model_tarball(plain, tmp_path / "out2", tar_name="my_model_2.tar.gz")


def test_size_and_member_limits(tmp_path: Path) -> None:
    tarball = _tarball(
        tmp_path / "m_1.tar.gz", _file("m/config.pbtxt", CONFIG), _file("m/1/w", b"0" * 5000)
    )
    with pytest.raises(TarballError, match="extracted content exceeds 1000 bytes"):
        extract_model_tarball(tarball, tmp_path / "a", ExtractionLimits(max_extracted_bytes=1000))
    with pytest.raises(TarballError, match="more than 1 members"):
        extract_model_tarball(tarball, tmp_path / "b", ExtractionLimits(max_members=1))
    with pytest.raises(TarballError, match="over the 10-byte tarball limit"):
        extract_model_tarball(tarball, tmp_path / "c", ExtractionLimits(max_tarball_bytes=10))


def test_refuses_missing_config(tmp_path: Path) -> None:
    message = _refused(tmp_path, _file("m/1/model.py"))
    assert "model directory 'm' has no config.pbtxt (m/config.pbtxt)" in message


def test_layout_rules() -> None:
    configs = {"a": CONFIG.decode(), "b": CONFIG.decode()}
    with pytest.raises(TarballError, match=r"2 model directories \(a, b\) and no ensemble"):
        check_layout("t", [], ["a", "b"], configs)
    with pytest.raises(TarballError, match="the tar root holds the file 'README'"):
        check_layout("t", ["README"], ["a"], configs)
    with pytest.raises(TarballError, match="holds no model directory"):
        check_layout("t", [], [], {})
    ensembles = {"e1": ENSEMBLE.decode(), "e2": ENSEMBLE.decode(), "member": CONFIG.decode()}
    with pytest.raises(TarballError, match=r"several ensembles \(e1, e2\)"):
        check_layout("t", [], ["e1", "e2", "member"], ensembles)
    with pytest.raises(TarballError, match="uses model\\(s\\) member that are not in the tarball"):
        check_layout("t", [], ["e1", "other"], {"e1": ENSEMBLE.decode(), "other": CONFIG.decode()})
    single_ensemble = check_layout("t", [], ["e1"], {"e1": ENSEMBLE.decode()})
    assert single_ensemble.ensemble == "e1"
