"""Node API polling at fleet scale (issue 15): the real exporter's threads do not grow with
the `--api` nodes, and an idle exporter whose nodes' APIs are unreachable does not keep
waking up (the satellite-dependent polls used to wait in a 0.2 s loop, per node, forever)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from exporter.simulate.nodeapi import SimulatedNodeApi
from tests.conftest import free_port, wait_for
from tests.test_fleet_idle import threads


def switches(pid: int) -> int:
    """Voluntary context switches of all the process's threads: one per wakeup from a wait."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as fh:
                total += next(int(line.split()[1]) for line in fh
                              if line.startswith("voluntary_ctxt_switches:"))
        except (OSError, StopIteration):
            continue  # a thread that just ended
    return total


def start(exporter_process, url: str, count: int):
    args = [a for i in range(count) for a in ("--api", f"n{i + 1}={url}")]
    return exporter_process(*args)


@pytest.fixture(scope="module")
def sim():
    server = SimulatedNodeApi("v1.146").start()
    yield server
    server.stop()


@pytest.mark.parametrize("api", ["simulated", "unreachable"])
def test_threads_do_not_grow_with_the_api_nodes(api, sim, exporter_process):
    url = sim.url if api == "simulated" else f"http://127.0.0.1:{free_port()}"
    few = start(exporter_process, url, 3)
    many = start(exporter_process, url, 30)
    if api == "simulated":  # every node polled: the satellite endpoints run too
        wait_for(lambda: all(many.samples().get(f'storagenode_up{{node="n{i}"}}') == 1
                             for i in range(1, 31)), timeout=20, what="30 nodes up")
    time.sleep(0.5)
    assert threads(many.proc.pid) == threads(few.proc.pid)


def test_unreachable_apis_do_not_keep_the_exporter_awake(exporter_process):
    proc = start(exporter_process, f"http://127.0.0.1:{free_port()}", 30)
    wait_for(lambda: proc.samples().get('storagenode_up{node="n30"}') == 0, timeout=10,
             what="30 nodes listed")
    time.sleep(1.0)  # the first (failing) polls are done
    before, t0 = switches(proc.proc.pid), time.monotonic()
    time.sleep(2.0)
    rate = (switches(proc.proc.pid) - before) / (time.monotonic() - t0)
    print(f"\n30 unreachable APIs: {rate:.0f} wakeups/s")
    assert rate < 40  # was > 300 (2 threads a node, 5 times a second)


def test_a_due_node_poll_goes_before_queued_slow_polls():
    """With every worker busy, the node poll (priority 0, it drives storagenode_up) is the
    next to run, not the last behind other nodes' queued payout estimates."""
    from exporter.nodeapi.scheduler import Job, Scheduler
    sched = Scheduler(workers=1)
    release, ran = threading.Event(), []

    def blocker():
        release.wait(5)
        ran.append("blocker")

    def record(name):
        ran.append(name)

    sched.add(Job("a", "payout", blocker))
    wait_for(lambda: sched._busy.get("a"), timeout=2, what="the worker busy")
    for owner in ("b", "c", "d"):
        sched.add(Job(owner, "payout", lambda o=owner: record(f"{o}-payout")))
    sched.add(Job("e", "node", lambda: record("e-node"), priority=0))
    time.sleep(0.2)  # all four due and queued behind the blocker
    release.set()
    wait_for(lambda: len(ran) == 5, timeout=5, what="every job run")
    assert ran[:2] == ["blocker", "e-node"]


def test_one_owner_holds_at_most_its_share_of_the_workers():
    from exporter.nodeapi.scheduler import Job, Scheduler
    sched = Scheduler(workers=4, per_owner=2)
    release, ran = threading.Event(), []
    for name in ("node", "satellites", "payout", "held"):
        sched.add(Job("slow", name, lambda: release.wait(5) and None))
    sched.add(Job("fast", "node", lambda: ran.append("fast")))
    try:
        wait_for(lambda: ran == ["fast"], timeout=2, what="the other owner's poll")
        assert sched._busy["slow"] == 2
    finally:
        release.set()
