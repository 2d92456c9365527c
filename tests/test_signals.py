"""Signals that the kernel hands to a thread other than the main one still take effect.

A process-directed signal goes to any thread that does not block it. A Python handler then
runs only once the main thread executes bytecode, and a main thread asleep in `Event.wait()`
never does: before exporter/signals.py a SIGHUP taken by an HTTP connection's thread was lost
(CI: the TLS reload test timed out), and a SIGTERM could be lost the same way. These tests
send each signal to one chosen thread with tgkill(2), once to every thread of the process."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, ROOT, free_port, wait_for

LOG = FIXTURES / "logs" / "v1.142.log"

try:
    _tgkill = ctypes.CDLL(None, use_errno=True).tgkill  # glibc 2.30+
except AttributeError:  # pragma: no cover - other libcs
    _tgkill = None

pytestmark = pytest.mark.skipif(_tgkill is None or not os.path.isdir("/proc/self/task"),
                                reason="needs Linux /proc and glibc's tgkill")


def tgkill(pid: int, tid: int, sig: int) -> bool:
    """Send `sig` to thread `tid` alone; False when that thread has ended meanwhile (an HTTP
    connection's thread lives as long as its request)."""
    if _tgkill(pid, tid, sig) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.ESRCH and os.path.exists(f"/proc/{pid}"):
        return False
    raise OSError(err, os.strerror(err))


def threads(pid: int) -> list[int]:
    """The process's thread ids, the main thread (tid == pid) last."""
    return sorted((int(t) for t in os.listdir(f"/proc/{pid}/task")), key=lambda t: t == pid)


def test_every_thread_s_sighup_reloads_and_its_sigterm_stops(exporter_process):
    proc = exporter_process("--node", f"n1:{LOG}")
    pid = proc.proc.pid
    tids, n = threads(pid), 0
    for tid in tids:
        if not tgkill(pid, tid, signal.SIGHUP):
            continue
        n += 1
        wait_for(lambda n=n: proc.logged().count("reload: no change") == n, timeout=5,
                 what=f"the reload of the SIGHUP sent to thread {tid} "
                      f"({'main' if tid == pid else 'not main'})")
    assert n >= 3, (n, tids)  # the main thread and at least two others
    assert any(tgkill(pid, tid, signal.SIGTERM) for tid in threads(pid)[:-1])
    assert proc.proc.wait(10) == 0
    assert "shutting down" in proc.stop()


def _stops_on_a_sigterm_to_another_thread(cmd: list[str], ready) -> None:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        wait_for(lambda: proc.poll() is None and ready(proc), timeout=20,
                 what=f"{cmd[2:4]} ready")
        assert any(tgkill(proc.pid, t, signal.SIGTERM) for t in threads(proc.pid)[:-1])
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_demo_stops_on_a_sigterm_to_another_thread():
    port = free_port()

    def ready(_proc) -> bool:
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    _stops_on_a_sigterm_to_another_thread(
        [sys.executable, "-m", "exporter", "demo", "--web.listen-address",
         f"127.0.0.1:{port}", "--api.port", "0"], ready)


def test_the_simulated_node_api_stops_on_a_sigterm_to_another_thread():
    _stops_on_a_sigterm_to_another_thread(
        [sys.executable, "-m", "exporter.simulate.nodeapi", "--listen", "127.0.0.1:0"],
        lambda proc: "dashboard API on" in proc.stdout.readline())
