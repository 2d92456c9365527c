"""The git commit the exporter was built from, for `--version` and the build_info metric.

Looked up once per process: `exporter/REVISION` (the Docker image writes it at build time
from its REVISION build argument, see the Dockerfile), else the HEAD of the git checkout the
package runs from, else "unknown" (a tarball, or an image built without the argument).
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REVISION_FILE = PACKAGE_DIR / "REVISION"
UNKNOWN = "unknown"
# A commit hash or a short tag-like name: it becomes a label value, so nothing longer or odder.
_VALID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,63}")


def _valid(text: str) -> str | None:
    text = text.strip()
    return text if _VALID.fullmatch(text) else None


@functools.cache
def revision() -> str:
    """The commit (full hash from git; whatever the build wrote, if valid), or 'unknown'."""
    if REVISION_FILE.is_file():
        try:
            return _valid(REVISION_FILE.read_text(encoding="utf-8")) or UNKNOWN
        except (OSError, UnicodeDecodeError):
            return UNKNOWN
    if (PACKAGE_DIR.parent / ".git").exists():
        try:
            out = subprocess.run(["git", "-C", str(PACKAGE_DIR.parent), "rev-parse", "HEAD"],
                                 capture_output=True, text=True, timeout=2)
            if out.returncode == 0:
                return _valid(out.stdout) or UNKNOWN
        except (OSError, subprocess.SubprocessError):
            pass
    return UNKNOWN
