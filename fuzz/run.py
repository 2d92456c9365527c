"""Run the fuzz harnesses for a bounded time and say how many executions ran clean.

    python fuzz/run.py [--seconds 600] [parser|hotpath ...]
    python fuzz/run.py --replay fuzz/crashes/FILE [parser|hotpath]   # one input, with output

Builds the seed corpus (fuzz/seeds.py) and the sanitized C module (fuzz/build.py), then runs
each harness under libFuzzer (atheris) with the seeds, a growing corpus in
fuzz/build/corpus/<harness>/ and fuzz/logs.dict. A crash (an exception, a broken check, an
ASan or UBSan report) stops that harness; its input is written to fuzz/build/artifacts/ and
the run exits 1. The full libFuzzer output is kept in fuzz/build/<harness>.log.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz import build, seeds

HERE = Path(__file__).resolve().parent
HARNESSES = ("parser", "hotpath")
_EXECS = re.compile(r"stat::number_of_executed_units: (\d+)|Done (\d+) runs in")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_SOFT = re.compile(r"fuzz: soft check '([^']+)' failed")


@dataclass
class Result:
    harness: str
    seconds: float
    executions: int = 0
    returncode: int = 0
    artifact: str | None = None
    soft: list[str] = field(default_factory=list)
    tail: str = ""

    @property
    def clean(self) -> bool:
        return self.returncode == 0 and self.artifact is None

    def line(self) -> str:
        if self.clean:
            soft = f" (soft checks not held: {', '.join(self.soft)})" if self.soft else ""
            return (f"{self.harness}: {self.executions} executions ran clean "
                    f"in {self.seconds:.0f} s{soft}")
        return (f"{self.harness}: FAILED after {self.executions} executions "
                f"(exit {self.returncode}), input: {self.artifact or 'a seed, see the log'}")


def harness_env(harness: str) -> dict[str, str]:
    """The environment a harness runs in (the sanitizer runtime for the C one)."""
    if harness == "hotpath":
        build.build()
        return build.runtime_env()
    return dict(os.environ)


def replay(harness: str, path: str) -> int:
    """Run one input through a harness, its whole output on the terminal."""
    cmd = [sys.executable, str(HERE / f"fuzz_{harness}.py"), path]
    return subprocess.run(cmd, env=harness_env(harness), check=False).returncode


def run(harness: str, seconds: int, *, corpus: Path | None = None, max_len: int = 65536,
        quiet: bool = False) -> Result:
    """One harness for `seconds` of fuzzing (after the seeds ran in full). `corpus`: where
    libFuzzer keeps the inputs it found (default fuzz/build/corpus/<harness>/, kept between
    runs)."""
    seed_dir = seeds.build()
    env = harness_env(harness)
    env["FUZZ_FULL_SEEDS"] = str(seed_dir)
    corpus = corpus or build.BUILD / "corpus" / harness
    artifacts = build.BUILD / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, str(HERE / f"fuzz_{harness}.py"),
        f"-max_total_time={seconds}", f"-max_len={max_len}", "-timeout=20",
        "-rss_limit_mb=4096", f"-dict={HERE / 'logs.dict'}", "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{harness}-", str(corpus), str(seed_dir),
    ]
    log_path = build.BUILD / f"{harness}.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        # bounded: the fuzz time, the seeds in full and the ASan start-up
        rc = proc.wait(timeout=seconds + 300)
    text = log_path.read_text(errors="replace")
    result = Result(harness, time.monotonic() - started, returncode=rc)
    for m in _EXECS.finditer(text):
        result.executions = max(result.executions, int(m.group(1) or m.group(2)))
    if m := _ARTIFACT.search(text):
        result.artifact = m.group(1)
    result.soft = sorted(set(_SOFT.findall(text)))
    if not result.clean:
        result.tail = "\n".join(text.splitlines()[-60:])
    if not quiet:
        print(result.line(), flush=True)
        if result.tail:
            print(result.tail, flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600, help="per harness")
    parser.add_argument("--replay", metavar="FILE", help="run one input (default: both harnesses)")
    parser.add_argument("harness", nargs="*", help=f"of {', '.join(HARNESSES)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.harness) - set(HARNESSES)
    if unknown:
        parser.error(f"unknown harness: {', '.join(sorted(unknown))}")
    if args.replay:
        return max(replay(h, args.replay) for h in args.harness or HARNESSES)
    results = [run(h, args.seconds) for h in args.harness or HARNESSES]
    print("summary: " + "; ".join(r.line() for r in results))
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
