"""`docker-name:NAME`: a container's json-file log, followed across recreation.

The container is found by its name in `containers/<id>/config.v2.json` under the Docker data
root (`"Name": "/NAME"`; the newest `Created` wins should two claim it), and its log
`containers/<id>/<id>-json.log` is read with the Docker json-file source. When the container
is recreated (watchtower, `docker compose up`), a new id appears with the same name: the old
log is read to its end through the descriptor still open (a removed container's log stays
readable while we hold it), then the new one from its start. Checks are cheap: at each end
of file, every `resolve_interval` seconds, one stat of the containers directory (it changes
when a container is created or removed); the config files are read again only then, and only
those that changed. The position carries the container id, so a restart resumes in the same
container, or reads the container that replaced it from its start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

from logstream.docker import DockerJsonSource
from logstream.file import CHUNK
from logstream.source import Batch

log = logging.getLogger("exporter.source")

_ID = re.compile(r"[0-9a-f]{64}")
MAX_CONFIG = 4 << 20  # a config.v2.json is a few KiB; a bigger one is not read


class Resolver:
    """Container name -> id, from the config.v2.json files, cached by modification time."""

    def __init__(self, containers_dir: str) -> None:
        self.containers_dir = containers_dir
        self._seen: dict[str, tuple[int, str, str]] = {}  # id -> (mtime_ns, name, created)
        self._dir_mtime: int | None = None
        self._problem = ""

    def changed(self) -> bool:
        """The containers directory gained or lost an entry since the last scan."""
        try:
            return os.stat(self.containers_dir).st_mtime_ns != self._dir_mtime
        except OSError:
            return True

    def find(self, name: str) -> str | None:
        want = "/" + name.lstrip("/")
        try:
            self._dir_mtime = os.stat(self.containers_dir).st_mtime_ns
            entries = [e for e in os.scandir(self.containers_dir) if _ID.fullmatch(e.name)]
        except OSError as exc:
            self._report(f"cannot list {self.containers_dir}: {exc.strerror}")
            return None
        seen: dict[str, tuple[int, str, str]] = {}
        for entry in entries:
            path = os.path.join(entry.path, "config.v2.json")
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                continue
            cached = self._seen.get(entry.name)
            if cached is None or cached[0] != mtime:
                cached = (mtime, *self._read(path))
            seen[entry.name] = cached
        self._seen = seen
        matches = [(created, cid) for cid, (_, found, created) in seen.items() if found == want]
        return max(matches)[1] if matches else None

    def _read(self, path: str) -> tuple[str, str]:
        """(Name, Created) of one config.v2.json; ("", "") if it cannot be read."""
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read(MAX_CONFIG))
        except PermissionError:
            self._report(f"cannot read {path}: permission denied (config.v2.json is readable "
                         "by root only: run the exporter as root, see docs/sources.md)")
            return "", ""
        except (OSError, ValueError, RecursionError):
            return "", ""  # being rewritten by Docker, or not one of Docker's
        if not isinstance(data, dict):
            return "", ""
        name, created = data.get("Name"), data.get("Created")
        return (name if isinstance(name, str) else "",
                created if isinstance(created, str) else "")

    def _report(self, problem: str) -> None:
        if problem != self._problem:
            self._problem = problem
            log.error("%s", problem)


class DockerNameSource(DockerJsonSource):
    """The json-file log of the container called `name` at any time."""

    def __init__(self, name: str, data_root: str = "/var/lib/docker", *,
                 resolve_interval: float = 1.0, **kwargs) -> None:
        self.container_name = name.lstrip("/")
        self.containers_dir = os.path.join(data_root, "containers")
        super().__init__("", **kwargs)
        self.description = f"docker container {self.container_name} ({self.containers_dir})"
        self.container_id = ""
        self.resolver = Resolver(self.containers_dir)
        self.resolve_interval = resolve_interval
        self._next_check = 0.0
        self.stats.extra["recreations"] = 0

    def log_path(self, cid: str) -> str:
        return os.path.join(self.containers_dir, cid, f"{cid}-json.log")

    def _use(self, cid: str) -> None:
        self.container_id, self.path = cid, self.log_path(cid)

    def position(self) -> dict[str, Any] | None:
        pos = super().position()
        if pos is not None:
            pos = {**pos, "container": self.container_id, "name": self.container_name}
        return pos

    def steps(self, stop: threading.Event) -> Iterator[Batch | None]:
        chosen = yield from self._choose(stop)
        if chosen:
            yield from super().steps(stop)

    def watched(self) -> str | None:
        return super().watched() if self.container_id else None

    def _choose(self, stop: threading.Event) -> Generator[None, None, bool]:
        """Pick the container to read and where, from the saved position (`resume`); yields
        None while the container is not there (looked for every `resolve_interval`).
        Returns False if stopped before one was found."""
        pos = self.resume
        saved = pos.get("container") if isinstance(pos, dict) else None
        if isinstance(saved, str) and _ID.fullmatch(saved) and os.path.exists(
                self.log_path(saved)):
            self._use(saved)  # resume in it; a newer container is switched to at its end
            return True
        if pos is not None and saved is None:
            log.warning("saved position of %s is not a docker-name position; ignoring it",
                        self.description)
            pos = self.resume = None
        waited = False
        while (cid := self.resolver.find(self.container_name)) is None:
            if not waited:
                log.warning("container %s not found in %s; waiting for it",
                            self.container_name, self.containers_dir)
                waited = True
            self.stats.up = False
            again = time.monotonic() + self.resolve_interval
            while time.monotonic() < again:
                if stop.is_set():
                    return False
                yield None
        if pos is not None or waited:  # another container than the saved one, or a new one
            if pos is not None:
                log.info("container %s was recreated while the exporter was not running; "
                         "reading the new container's log from its start",
                         self.container_name)
            self.resume, self.from_start = None, True
        self._use(cid)
        self._next_check = time.monotonic() + self.resolve_interval
        return True

    def _check_rotation(self) -> Batch | None:
        """At end of file: the container recreated? Else Docker's own rotation (max-size)."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.resolve_interval
            gone = not os.path.exists(self.path)
            if gone or self.resolver.changed():
                cid = self.resolver.find(self.container_name)
                if cid is not None and cid != self.container_id:
                    return self._switch(cid)
        return super()._check_rotation()

    def _switch(self, cid: str) -> Batch:
        """Finish the old container's log through the open descriptor, then go to `cid`."""
        rest: list[str] = []
        if self._fd is not None:
            while data := os.read(self._fd, CHUNK):
                self._offset += len(data)
                self.stats.bytes_read += len(data)
                rest.extend(self.splitter.feed(data))
        rest.extend(self.splitter.flush())
        batch = self.make_batch(rest)  # positioned at the end of the old container's log
        self._flush_deferred(batch.lines, batch.read_time, None)
        self._joined, self._joined_bytes = "", 0  # an entry cut by the container's end
        log.info("container %s was recreated (%s -> %s); reading the new container's log "
                 "from its start", self.container_name, self.container_id[:12], cid[:12])
        self.stats.extra["recreations"] += 1
        self._close()
        self._ident = None
        self._use(cid)
        self._live_offset = 0
        return batch
