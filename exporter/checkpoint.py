"""Durable state: read positions and counters saved together, atomically.

The node runner (exporter/runner.py) records each source position under `NodeState.lock`
together with the counters of exactly the lines before it, so one copy taken under that lock
is a consistent checkpoint: on restart the source resumes after the last counted line and the
counters continue from the saved values. Nothing is counted twice, nothing is missed, and
Prometheus sees no counter reset, also after `kill -9`.

When it is written (`--state-file FILE`, serve only):

* every `INTERVAL` seconds, if any node's state changed;
* at every scrape, *after* the log metrics were rendered: every value a scraper has seen is
  then on disk before the response is sent, so a restart never shows a smaller value than
  Prometheus already stored (which it would take for a counter reset);
* on shutdown, after the node threads stopped.

Writes are atomic (temp file, fsync, rename, fsync of the directory). A state file that cannot
be used (damaged, truncated, written by a newer version) is renamed aside to
`FILE.corrupt-<time>` / `FILE.newer-<time>` with one log line, and the exporter starts fresh;
saved nodes that are no longer configured are dropped with one log line.

What a state file holds and how each value is checked: exporter/statefile.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator

from exporter import __version__
from exporter.statefile import (
    FORMAT,
    VERSION,
    SavedNode,
    StateFileError,
    capture,
    decode,
    encode,
    file_of,
    restore,
    restore_stats,
    source_kind,
    source_stats,
)

log = logging.getLogger("exporter.checkpoint")

INTERVAL = 5.0


# ---- the state file -------------------------------------------------------------------------


def read_state_file(path: str) -> tuple[dict[str, SavedNode], str | None]:
    """Decoded nodes, and None or the reason the file is unusable ("corrupt: ..."/"newer: ...").

    A missing file is simply empty.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return {}, None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return {}, f"corrupt: not valid JSON, truncated or damaged ({exc})"
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return {}, "corrupt: not a storagenode-exporter state file"
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return {}, f"corrupt: bad format version {version!r}"
    if version > VERSION:
        return {}, (f"newer: format version {version} (written by storagenode-exporter "
                    f"{doc.get('exporter_version', '?')}; this one reads up to {VERSION})")
    nodes = doc.get("nodes")
    if not isinstance(nodes, dict):
        return {}, "corrupt: no nodes"
    try:
        return {str(name): decode(str(name), data) for name, data in nodes.items()}, None
    except StateFileError as exc:
        return {}, f"corrupt: {exc}"


def write_atomic(path: str, data: bytes) -> None:
    """temp file, fsync, rename, fsync the directory: the old or the new file, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:  # some filesystems (SMB, some FUSE) cannot fsync a directory
        pass
    finally:
        os.close(dfd)


def set_aside(path: str, kind: str) -> str | None:
    """Rename an unusable state file to PATH.<kind>-<UTC time>; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = f"{path}.{kind}-{stamp}"
    n = 1
    while os.path.exists(target):
        n += 1
        target = f"{path}.{kind}-{stamp}-{n}"
    try:
        os.rename(path, target)
    except OSError:
        return None
    return target


class Checkpointer:
    """Loads the state file at start, saves it periodically, at scrapes and at shutdown."""

    def __init__(self, path: str, node_sources: dict[str, str | None],
                 interval: float = INTERVAL) -> None:
        self.path = path
        self.node_sources = node_sources  # configured nodes with a log: name -> source spec
        self.interval = interval
        self.saved: dict[str, SavedNode] = {}
        self.runners: list = []
        self._save_lock = threading.Lock()
        self._stop = threading.Event()
        #: set by a runner whose node reads another file, by a reload and by stop()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._markers: dict[str, tuple] = {}
        self._files: dict[str, tuple | None] = {}
        self._fragments: dict[str, str] = {}
        self._failing = False
        self._dirty = False
        self.errors = 0
        self.last_success = 0.0
        self.last_duration = 0.0
        self.last_lock_seconds = 0.0

    # ---- start -------------------------------------------------------------------------

    def load(self) -> dict[str, dict]:
        """Read the state file; returns the saved read position of each configured node."""
        with contextlib.suppress(OSError):  # left by a write interrupted by kill -9
            os.unlink(self.path + ".tmp")
        try:
            nodes, problem = read_state_file(self.path)
        except OSError as exc:
            log.error("cannot read state file %s (%s); starting fresh, it will be overwritten",
                      self.path, exc.strerror)
            return {}
        if problem is not None:
            kind, _, why = problem.partition(": ")
            moved = set_aside(self.path, kind)
            where = f"moved to {moved}" if moved else "could not be moved aside"
            log.error("state file %s is unusable, %s (%s); starting fresh", self.path, why, where)
            return {}
        if not nodes and not os.path.exists(self.path):
            log.info("no state file %s yet; it is created within %.0f s", self.path,
                     self.interval)
            return {}
        gone = sorted(set(nodes) - set(self.node_sources))
        if gone:
            log.warning("state file %s: dropping saved state of node(s) no longer configured: %s",
                        self.path, ", ".join(gone))
        positions = {}
        for name, saved in nodes.items():
            if name not in self.node_sources:
                continue
            self.saved[name] = saved
            for note in saved.notes:
                log.warning("state file %s: node %s: %s", self.path, name, note)
            if saved.position is None:
                continue
            if source_kind(saved.source) != source_kind(self.node_sources[name]):
                log.warning("node %s: log source changed from %s to %s; counters continue, the "
                            "saved read position is not used", name, saved.source,
                            self.node_sources[name])
                saved.position = None
                continue
            positions[name] = saved.position
        if self.saved:
            log.info("state file %s: resuming %d node(s): %s", self.path, len(self.saved),
                     ", ".join(sorted(self.saved)))
        return positions

    def start(self, runners: Iterable, registry=None) -> None:
        """Put the saved counters into the nodes, then save in the background (and at each
        scrape when `registry` is given). Call before the runners and the HTTP server start."""
        self.runners = list(runners)
        for runner in self.runners:
            saved = self.saved.get(runner.name)
            if saved is not None:
                restore(runner.state, saved)
                restore_stats(runner.source, saved.stats)
        self.saved = {}
        self._hook(self.runners)
        if registry is not None:
            registry.register(self)  # after LogCollector: saves what a scrape has just shown
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def set_nodes(self, runners: Iterable, node_sources: dict[str, str | None]) -> None:
        """A config reload (exporter/reload.py): save these nodes from now on; a removed
        node's state leaves the file at the next save, as after a restart without it."""
        with self._save_lock:
            self.runners, self.node_sources = list(runners), dict(node_sources)
            for name in set(self._fragments) - set(self.node_sources):
                del self._fragments[name]
                self._markers.pop(name, None)
                self._dirty = True
        self._hook(self.runners)

    def _hook(self, runners: list) -> None:
        """Have the runners wake the saving thread when their node reads another file, and
        look at once (a restored or a new node's position is a file not yet saved)."""
        for runner in runners:
            runner.file_changed = self._wake
        self._wake.set()

    def stop(self) -> None:
        """Final save; call after the runners stopped so it holds their last batch."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.save()

    def _run(self) -> None:
        """Save every `interval`, and at once when a node starts reading another file (its
        first position, a rotation; NodeRunner sets `_wake` then): a kill -9 right after the
        start must find the starting point on disk, not `null` (which would mean "from the
        end"). Sleeps on the event, so an idle exporter does not wake 20 times a second."""
        due = time.monotonic() + self.interval
        while True:
            self._wake.wait(max(0.0, due - time.monotonic()))
            if self._stop.is_set():
                return
            self._wake.clear()  # before the look: a switch during it wakes the next wait
            if time.monotonic() >= due or self._new_files():
                self.save()
                due = time.monotonic() + self.interval

    def _new_files(self) -> bool:
        """A node's position names another file than at the last look (cheap: no lock)."""
        changed = False
        for runner in self.runners:
            which = file_of(runner.state.position)
            if which != self._files.get(runner.name):
                self._files[runner.name] = which
                changed = True
        return changed

    # ---- save --------------------------------------------------------------------------

    def save(self) -> bool:
        """Write the state file if any node changed since the last write. Never raises."""
        with self._save_lock:
            started = time.perf_counter()
            try:
                changed, locked = self._refresh()
                if not changed and not self._dirty and os.path.exists(self.path):
                    return False
                self._dirty = True  # until the file on disk holds the encoded state
                write_atomic(self.path, self._document())
                self._dirty = False
            except Exception as exc:  # disk full, read-only volume, ...: keep serving
                self.errors += 1
                if not self._failing:
                    log.error("cannot write state file %s: %s; retrying every %.0f s",
                              self.path, exc, self.interval)
                    self._failing = True
                return False
            if self._failing:
                log.info("state file %s is written again", self.path)
                self._failing = False
            self.last_success = time.time()
            self.last_duration = time.perf_counter() - started
            self.last_lock_seconds = locked
            return True

    def _refresh(self) -> tuple[bool, float]:
        """Re-encode the nodes whose state changed; returns (changed, seconds under locks)."""
        changed = False
        locked = 0.0
        for runner in self.runners:
            state = runner.state
            stats = source_stats(runner.source)
            t0 = time.perf_counter()
            with state.lock:
                # every line counts in lines or unparsed: the total moves with every batch
                marker = (sum(state.lines.values()) + state.unparsed, stats["bytes_read"],
                          state.position)
                cap = capture(state) if marker != self._markers.get(runner.name) else None
            locked += time.perf_counter() - t0
            if cap is None:
                continue
            self._markers[runner.name] = marker
            data = encode(cap, stats, self.node_sources.get(runner.name))
            self._fragments[runner.name] = json.dumps(data, separators=(",", ":"))
            changed = True
        return changed, locked

    def _document(self) -> bytes:
        head = json.dumps({"format": FORMAT, "version": VERSION,
                           "exporter_version": __version__, "saved_at": time.time()})
        nodes = ",".join(f"{json.dumps(n)}:{f}" for n, f in sorted(self._fragments.items()))
        return f'{head[:-1]}, "nodes": {{{nodes}}}}}\n'.encode()

    # ---- metrics (and the save at scrape time) -------------------------------------------

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        # imported here: `report` reaches this module (runner.py) but never collects it, and
        # its table needs no prometheus_client (~50 ms of start-up)
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        self.save()
        ok = GaugeMetricFamily(
            "storagenode_exporter_checkpoint_last_success_timestamp_seconds",
            "When the state file (--state-file) was last written.",
        )
        ok.add_metric([], self.last_success)
        errors = CounterMetricFamily(
            "storagenode_exporter_checkpoint_errors", "Failed writes of the state file."
        )
        errors.add_metric([], self.errors)
        took = GaugeMetricFamily(
            "storagenode_exporter_checkpoint_duration_seconds",
            "Time the last state file write took (copy, encode, write, fsync).",
        )
        took.add_metric([], self.last_duration)
        yield from (ok, errors, took)


__all__ = ["FORMAT", "VERSION", "Checkpointer", "StateFileError", "read_state_file"]
