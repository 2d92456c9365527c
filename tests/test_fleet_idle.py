"""Many tailed logs in one real exporter: a fixed set of threads, idle backoff that still reads
a new line at once, and one broken source that costs only itself (issue 15)."""

from __future__ import annotations

import json
import os
import shutil
import time

from tests.conftest import wait_for
from tests.test_tail import append, upload_line


def threads(pid: int) -> int:
    """The process's thread count, the lowest of a few looks (a scrape's connection thread
    may still be finishing)."""
    counts = []
    for _ in range(5):
        with open(f"/proc/{pid}/status") as fh:
            counts.append(next(int(line.split()[1]) for line in fh
                               if line.startswith("Threads:")))
        time.sleep(0.05)
    return min(counts)


def status(proc) -> dict[str, dict]:
    """name -> the log part of /api/status (cheaper to ask than /metrics for 30 nodes)."""
    doc = json.loads(proc.get("/api/status"))
    return {n["name"]: n["log"] for n in doc["nodes"] if n["log"]}


def lines(proc, name: str) -> int:
    return status(proc)[name]["total"]["lines"]


def start(exporter_process, logs):
    args = [a for i, log in enumerate(logs) for a in ("--node", f"n{i + 1}:{log}")]
    proc = exporter_process(*args)
    wait_for(lambda: all(n["up"] for n in status(proc).values()), timeout=20,
             what="every log opened")
    return proc


def make_logs(tmp_path, count: int, tag: str):
    """One directory per node, as operators lay them out (one watch per directory)."""
    logs = []
    for i in range(count):
        log = tmp_path / f"{tag}{i}" / "node.log"
        log.parent.mkdir()
        log.write_text("")
        logs.append(log)
    return logs


def test_threads_do_not_grow_with_the_tailed_logs(tmp_path, exporter_process):
    few = start(exporter_process, make_logs(tmp_path, 3, "few"))
    many = start(exporter_process, make_logs(tmp_path, 30, "many"))
    time.sleep(0.3)
    assert threads(many.proc.pid) == threads(few.proc.pid)


def test_a_line_after_an_idle_spell_is_counted_at_once(tmp_path, exporter_process):
    logs = make_logs(tmp_path, 30, "n")
    proc = start(exporter_process, logs)
    time.sleep(5.0)  # idle: every source backed off to its longest poll (2 s)
    for index in (17, 4):
        name = f"n{index + 1}"
        before = lines(proc, name)
        t0 = time.monotonic()
        append(logs[index], [upload_line(1)])
        wait_for(lambda name=name, before=before: lines(proc, name) == before + 1,
                 timeout=5, interval=0.02, what=f"the new line of {name}")
        assert time.monotonic() - t0 < 1.0
        time.sleep(3.0)  # idle again before the second one


def test_a_broken_source_costs_only_itself(tmp_path, exporter_process):
    logs = make_logs(tmp_path, 3, "n")
    proc = start(exporter_process, logs)
    append(logs[1], [upload_line(i) for i in range(2)])
    wait_for(lambda: lines(proc, "n2") == 2, what="n2's first lines")
    os.unlink(logs[1])
    logs[1].mkdir()  # the log replaced by a directory: reading it raises
    wait_for(lambda: "node n2: reading file" in proc.logged(), what="n2's failure logged")
    failed = time.monotonic()
    for round_ in range(2):
        append(logs[0], [upload_line(i) for i in range(3)])
        append(logs[2], [upload_line(i) for i in range(5)])
        wait_for(lambda r=round_: lines(proc, "n1") == 3 * (r + 1)
                 and lines(proc, "n3") == 5 * (r + 1), timeout=5, what="n1 and n3 read on")
    assert not status(proc)["n2"]["up"]
    shutil.rmtree(logs[1])
    # another file (other first bytes than the saved position's): read from its start
    append(logs[1], [upload_line(i).replace("10:15:03", "11:00:00") for i in range(4)])
    wait_for(lambda: lines(proc, "n2") == 6, timeout=15, what="n2 read again")
    assert status(proc)["n2"]["up"]
    assert time.monotonic() - failed > 4.0  # after the runner's retry delay (5 s), events or not
    append(logs[0], [upload_line(1)])
    wait_for(lambda: lines(proc, "n1") == 7, timeout=5, what="n1 still read")
