from __future__ import annotations

import tarfile

import pytest

from dlx.core.errors import DataError
from dlx.data.archive import extract_tar
from tests.data.formats import add_tar_member


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, attrs in members:
            add_tar_member(tar, name, **attrs)
    return path


def test_extracts_the_top_folder(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [("top/a.txt", {}), ("top/sub/b.txt", {})])
    out = extract_tar(archive, tmp_path / "dest", "top")
    assert (out / "a.txt").read_bytes() == b"x" and (out / "sub" / "b.txt").is_file()
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["top"]


@pytest.mark.parametrize(
    "member, attrs",
    [
        ("top/../../evil.txt", {}),
        ("/tmp/evil-absolute.txt", {}),
        ("top/link", {"type": tarfile.SYMTYPE, "linkname": "../../evil.txt"}),
        ("top/abs-link", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
        ("top/hard", {"type": tarfile.LNKTYPE, "linkname": "../outside"}),
        ("top/dev", {"type": tarfile.CHRTYPE}),
    ],
)
def test_members_escaping_the_target_are_refused(tmp_path, member, attrs):
    archive = _tar(tmp_path / "a.tar.gz", [("top/ok.txt", {}), (member, attrs)])
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(DataError) as err:
        extract_tar(archive, dest, "top")
    assert "refused" in str(err.value) and member in str(err.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    assert not list(dest.iterdir()), "something was extracted"


def test_truncated_archive_leaves_nothing(tmp_path):
    archive = _tar(
        tmp_path / "a.tar.gz", [(f"top/{i}.txt", {"data": bytes(5000)}) for i in range(20)]
    )
    archive.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(DataError, match="not a readable archive"):
        extract_tar(archive, tmp_path / "dest", "top")
    assert not list((tmp_path / "dest").iterdir())


def test_archive_without_the_expected_folder(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", [("other/a.txt", {})])
    with pytest.raises(DataError, match="holds no top/ folder"):
        extract_tar(archive, tmp_path / "dest", "top")
