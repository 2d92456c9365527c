"""The git revision in `--version` and storagenode_exporter_build_info (exporter/revision.py).

The Docker image writes exporter/REVISION at build time (tests/test_docker_image.py checks the
built image); a checkout asks git; a tree without either says "unknown". The file cases run a
copy of the module in a scratch package, so the real exporter/ is never written to.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, ROOT, parse_exposition


def _git_head() -> str | None:
    if not (ROOT / ".git").exists():
        return None
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip() if out.returncode == 0 else None


def _revision_in(tmp_path, stamp: bytes | None) -> str:
    """revision() of a copy of the module in tmp_path/exporter/, with REVISION = stamp."""
    package = tmp_path / "exporter"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(ROOT / "exporter" / "revision.py", package / "revision.py")
    if stamp is not None:
        (package / "REVISION").write_bytes(stamp)
    out = subprocess.run([sys.executable, "-I", "-c",
                          "import sys; sys.path.insert(0, sys.argv[1]); "
                          "from exporter.revision import revision; print(revision())",
                          str(tmp_path)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize(("stamp", "want"), [
    (None, "unknown"),  # a tarball: no file, no .git
    (b"2e058d9c0ffee5a1b2c3d4e5f60718293a4b5c6d\n", "2e058d9c0ffee5a1b2c3d4e5f60718293a4b5c6d"),
    (b"v0.9.1-3-g2e058d9", "v0.9.1-3-g2e058d9"),
    (b"", "unknown"),
    (b"two words\n", "unknown"),  # a label value: no spaces, quotes, newlines inside
    (b'x"}\n' + b"y" * 10, "unknown"),
    (b"a" * 65, "unknown"),
    (b"\xff\xfe", "unknown"),
])
def test_the_stamped_file(tmp_path, stamp, want):
    assert _revision_in(tmp_path, stamp) == want


def test_build_info_and_version_carry_the_checkouts_head(exporter_process):
    head = _git_head()
    if head is None:
        pytest.skip("not a git checkout (a tarball): the revision is 'unknown' by design")
    proc = exporter_process("--node", f"n1:{FIXTURES / 'logs' / 'v1.80.log'}")
    build = [k for k in parse_exposition(proc.get("/metrics"))
             if k.startswith("storagenode_exporter_build_info{")]
    assert len(build) == 1 and f'revision="{head}"' in build[0], build
    out = subprocess.run([sys.executable, "-m", "exporter", "--version"], cwd=ROOT,
                         capture_output=True, text=True, timeout=20)
    assert f"(revision: {head})" in out.stdout, out
