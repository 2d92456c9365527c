"""`docker-name:NAME` (issue 13 §5): a fake Docker data root built here with the files Docker
writes (containers/<id>/config.v2.json, hostconfig.json, <id>-json.log), the real exporter
process, recreation of the container while it runs and while it is down, exact counts."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

from tests.conftest import total, wait_for

US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"


class FakeDocker:
    """/var/lib/docker/containers as dockerd lays it out for json-file containers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.containers = root / "containers"
        self.containers.mkdir(parents=True)
        self.lines = 0

    def create(self, name: str, created: str = "2026-08-21T09:00:00.123456789Z") -> str:
        cid = secrets.token_hex(32)
        home = self.containers / cid
        home.mkdir(mode=0o710)
        config = {  # json.Marshal output: no spaces, the keys Docker writes (abridged)
            "StreamConfig": {}, "State": {"Running": True, "Paused": False,
                                          "Restarting": False, "Pid": 4242, "ExitCode": 0,
                                          "StartedAt": created, "Health": None},
            "ID": cid, "Created": created, "Managed": False, "Path": "/entrypoint",
            "Args": [], "Config": {"Hostname": cid[:12], "Image": "storjlabs/storagenode:latest",
                                   "Labels": {"com.docker.compose.service": name}},
            "Image": "sha256:" + "ab" * 32, "LogPath": f"/var/lib/docker/containers/{cid}/"
            f"{cid}-json.log", "Name": "/" + name, "Driver": "overlay2", "OS": "linux",
            "RestartCount": 0, "HasBeenStartedBefore": True, "MountPoints": {},
        }
        path = home / "config.v2.json"
        path.write_text(json.dumps(config, separators=(",", ":")))
        path.chmod(0o600)
        (home / "hostconfig.json").write_text(json.dumps(
            {"LogConfig": {"Type": "json-file", "Config": {}}}, separators=(",", ":")))
        self.log(cid).touch(mode=0o640)
        return cid

    def log(self, cid: str) -> Path:
        return self.containers / cid / f"{cid}-json.log"

    def write(self, cid: str, count: int) -> None:
        """`count` uploaded lines of a v1.146+ node, wrapped as Docker's json-file does."""
        with self.log(cid).open("a") as fh:
            for _ in range(count):
                self.lines += 1
                line = (f'2026-08-21T10:00:00Z\tINFO\tpiecestore\tuploaded\t{{"process": '
                        f'"storagenode", "piece_id": "P{self.lines:051d}", "satellite_id": '
                        f'"{US1}", "action": "PUT", "remote_address": "10.0.0.1:1", '
                        f'"size": 1000}}\n')
                fh.write(json.dumps({"log": line, "stream": "stderr",
                                     "time": "2026-08-21T10:00:00.000000001Z"},
                                    separators=(",", ":")) + "\n")

    def rename(self, cid: str, name: str) -> None:
        path = self.containers / cid / "config.v2.json"
        config = json.loads(path.read_text())
        config["Name"] = "/" + name
        path.write_text(json.dumps(config, separators=(",", ":")))

    def remove(self, cid: str) -> None:
        shutil.rmtree(self.containers / cid)


def uploads(exp) -> float:
    return total(exp.samples(), "storagenode_transfers_total", node="n1", result="success")


def start(exporter_process, docker: FakeDocker, state: Path):
    return exporter_process("--node", "n1:docker-name:storagenode", "--docker.data-root",
                            str(docker.root), "--state-file", str(state), "--from-start")


def test_followed_across_recreation_while_running(tmp_path, exporter_process):
    docker = FakeDocker(tmp_path / "docker")
    old = docker.create("storagenode")
    docker.rename(docker.create("other", "2026-08-21T09:30:00Z"), "watchtower")
    docker.write(old, 30)
    exp = start(exporter_process, docker, tmp_path / "state.json")
    wait_for(lambda: uploads(exp) == 30, timeout=10, what="30 uploads")
    # compose up: the old container writes its last lines, is stopped and removed (its log
    # goes with it), a new container with the same name starts and logs
    docker.write(old, 12)
    docker.remove(old)
    new = docker.create("storagenode", "2026-08-21T11:00:00Z")
    docker.write(new, 20)
    wait_for(lambda: uploads(exp) == 62, timeout=10, what="62 uploads")
    assert "was recreated" in exp.logged()
    # and once more, the next container found while the old one still exists (renamed)
    docker.rename(new, "a1b2c3_storagenode")
    docker.write(new, 3)  # its last lines, unread yet when its successor appears
    newer = docker.create("storagenode", "2026-08-21T12:00:00Z")
    docker.write(newer, 5)
    wait_for(lambda: uploads(exp) == 70, timeout=10, what="70 uploads")


def test_recreated_while_the_exporter_is_down(tmp_path, exporter_process):
    docker = FakeDocker(tmp_path / "docker")
    state = tmp_path / "state.json"
    old = docker.create("storagenode")
    docker.write(old, 10)
    exp = start(exporter_process, docker, state)
    wait_for(lambda: uploads(exp) == 10, timeout=10, what="10 uploads")
    exp.stop()
    # down: the old container, renamed by compose, is still on disk with 4 lines more
    docker.write(old, 4)
    docker.rename(old, "0a1b2c_storagenode")
    new = docker.create("storagenode", "2026-08-21T11:00:00Z")
    docker.write(new, 6)
    exp = start(exporter_process, docker, state)
    wait_for(lambda: uploads(exp) == 20, timeout=10, what="20 uploads")
    saved = json.loads(state.read_text())
    exp.stop()
    assert new in json.dumps(saved)  # the position names the container it is in
    # down again: this time the old container is gone with 2 unread lines (the gap),
    # and its successor wrote 7
    docker.write(new, 2)
    docker.remove(new)
    newest = docker.create("storagenode", "2026-08-21T12:00:00Z")
    docker.write(newest, 7)
    exp = start(exporter_process, docker, state)
    wait_for(lambda: uploads(exp) == 27, timeout=10, what="27 uploads")
    assert "recreated while the exporter was not running" in exp.logged()
    docker.write(newest, 1)
    wait_for(lambda: uploads(exp) == 28, timeout=10, what="28 uploads")
    assert os.path.exists(docker.log(newest))


def test_waits_for_the_container(tmp_path, exporter_process):
    docker = FakeDocker(tmp_path / "docker")
    exp = exporter_process("--node", "n1:docker-name:storagenode", "--docker.data-root",
                           str(docker.root))
    wait_for(lambda: "container storagenode not found" in exp.logged(), timeout=5,
             what="the waiting line")
    cid = docker.create("storagenode")
    docker.write(cid, 3)  # a container that appears later is read from its start
    wait_for(lambda: uploads(exp) == 3, timeout=10, what="3 uploads")
