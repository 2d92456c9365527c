"""Build exporter/hotpath/*.c (exporter._hotpath) with ASan and UndefinedBehaviorSanitizer.

The build goes to fuzz/build/ (never over the in-place extension the exporter imports), with
`-fsanitize=fuzzer-no-link` so that libFuzzer (inside atheris) sees the C code's coverage.
`FUZZ_NO_SANITIZE` (e.g. `signed-integer-overflow`) turns one check off, to fuzz past a
known finding until its fix lands. The module only works in a Python started with the
sanitizer runtime preloaded (`runtime_env()`), as the atheris docs describe for native
extensions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "exporter" / "hotpath").glob("*.c"))
HEADERS = sorted((ROOT / "exporter" / "hotpath").glob("*.h"))
BUILD = ROOT / "fuzz" / "build"
MODULE = BUILD / "asan" / f"_hotpath{sysconfig.get_config_var('EXT_SUFFIX')}"

FLAGS = [
    "-g", "-O1", "-fno-omit-frame-pointer", "-fPIC", "-shared",
    "-fsanitize=address,undefined,fuzzer-no-link",
    # any undefined behaviour aborts (a crash libFuzzer records), not just a warning
    "-fno-sanitize-recover=all",
    "-Wall", "-Werror=implicit-function-declaration",
]


def clang() -> str | None:
    """The clang to build with ($CC when it is a clang), or None."""
    for name in (os.environ.get("CC", ""), "clang", "clang-14", "clang-15", "clang-16"):
        if name and "clang" in Path(name).name and shutil.which(name):
            return shutil.which(name)
    return None


def build(force: bool = False) -> Path:
    """Compile (unless the build is newer than the C sources and used the same command) and
    return the module's path."""
    cc = clang()
    if cc is None:
        raise RuntimeError("clang is not installed (Debian: make deps-debian)")
    flags = list(FLAGS)
    if os.environ.get("FUZZ_NO_SANITIZE"):
        flags.append(f"-fno-sanitize={os.environ['FUZZ_NO_SANITIZE']}")
    include = sysconfig.get_paths()["include"]
    tmp = MODULE.with_suffix(".tmp")
    cmd = [cc, *flags, f"-I{include}", *map(str, SOURCES), "-o", str(tmp)]
    stamp = MODULE.with_suffix(".cmd")
    if (not force and MODULE.exists() and stamp.exists() and stamp.read_text() == str(cmd)
            and MODULE.stat().st_mtime >= max(p.stat().st_mtime for p in SOURCES + HEADERS)):
        return MODULE
    MODULE.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, check=True)
    tmp.replace(MODULE)
    stamp.write_text(str(cmd))
    return MODULE


def runtime_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a Python that imports the sanitized module: the ASan runtime (which
    carries UBSan's handlers, and libFuzzer in atheris' build) preloaded; pymalloc off so
    that ASan sees every Python object the C code touches (a missing Py_INCREF becomes a
    heap-use-after-free report, not silent corruption); leak checks off (CPython keeps its
    interned objects to the end)."""
    import atheris

    env = dict(os.environ if env is None else env)
    env["LD_PRELOAD"] = str(Path(atheris.path()) / "asan_with_fuzzer.so")
    env["PYTHONMALLOC"] = "malloc"
    env["ASAN_OPTIONS"] = ":".join(filter(None, [
        env.get("ASAN_OPTIONS", ""), "detect_leaks=0", "allocator_may_return_null=1",
        "handle_abort=1", "symbolize=1",
    ]))
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    return env


if __name__ == "__main__":
    print(build(force="--force" in sys.argv))
