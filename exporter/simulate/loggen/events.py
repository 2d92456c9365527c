"""The lines a node writes besides piece transfers (reference §2): orders, retain, trash,
filewalkers, the updater... One method per event, mixed into LogGenerator."""

from __future__ import annotations

import json
import random
import time
from bisect import bisect

from exporter.simulate.loggen.eras import SATELLITES, Era

_DAY = 86400.0


class OtherEvents:
    """Other-event lines; needs the generator's `era`, `rng`, `_sat_cum` and `_ts`."""

    era: Era
    rng: random.Random
    _sat_cum: list[float]

    def _ts(self, t: float) -> str:
        raise NotImplementedError

    def _key(self, title: str, snake: str) -> str:
        return snake if self.era.snake else title

    def _fields(self, *pairs: tuple[str, object], process: str = "storagenode") -> str:
        return json.dumps({self.era.process_key: process, **dict(pairs)})

    def _line(self, t: float, level: str, logger: str | None, msg: str, fields: str,
              event: str | None, sat: str | tuple | None = None) -> tuple[str, tuple]:
        """The line and its tag; `sat` is the satellite's short name, or for hashstore lines
        what the line counts (HashstoreEvents.hashstore_counts)."""
        ts = self._ts(t)
        if logger is None:
            line = f"{ts}\t{level}\t{msg}\t{fields}\n"
        else:
            line = f"{ts}\t{level}\t{logger}\t{msg}\t{fields}\n"
        return line, (level, "event", event, sat)

    def _sat(self) -> tuple[str, str]:
        return SATELLITES[bisect(self._sat_cum, self.rng.random())]

    @staticmethod
    def _go_duration(seconds: float) -> str:
        """Go's time.Duration.String() (e.g. "1m37.535505102s", "2h3m4.5s", "245.1ms")."""
        if seconds < 1:
            return f"{seconds * 1000:.6f}".rstrip("0").rstrip(".") + "ms"
        hours, rest = divmod(seconds, 3600.0)
        minutes, sec = divmod(rest, 60.0)
        text = f"{sec:.9f}".rstrip("0").rstrip(".") + "s"
        if hours >= 1:
            return f"{int(hours)}h{int(minutes)}m{text}"
        if minutes >= 1:
            return f"{int(minutes)}m{text}"
        return text

    def _ev_orders(self, t, out):
        short, sat = self._sat()
        fields = self._fields((self._key("satelliteID", "satellite_id"), sat),
                              ("count", 1 + int(self.rng.random() * 400)))
        out.append(self._line(t, "INFO", "orders", "finished", fields, "orders_settled", short))

    def _ev_rejected(self, t, out):
        limit = 40
        fields = self._fields((self._key("live requests", "live_requests"), limit + 1),
                              (self._key("requestLimit", "request_limit"), limit))
        out.append(self._line(t, self.era.rejected_level, "piecestore",
                              "upload rejected, too many requests", fields, "upload_rejected"))

    def _ev_db_locked(self, t, out):
        if self.rng.random() < 0.6:
            logger, msg, text, frame = (
                "piecestore", "failed to add bandwidth usage", "bandwidthdb: database is locked",
                "storj.io/storj/storagenode/storagenodedb.(*bandwidthDB).Add:76",
            )
        else:
            logger, msg, text, frame = (
                "piecestore:cache", "error persisting cache totals to the database ",
                "piece space used: database is locked",
                "storj.io/storj/storagenode/storagenodedb.(*pieceSpaceUsedDB).UpdatePieceTotals"
                "ForAllSatellites:188",
            )
        fields = self._fields(("error", text), ("errorVerbose", f"{text}\n\t{frame}"))
        out.append(self._line(t, "ERROR", logger, msg, fields, "database_locked"))

    def _ev_ping_failed(self, t, out):
        short, sat = self._sat()
        text = (
            "ping satellite: failed to dial storage node (ID: 12bYyU4sQqJw8rVsT2VzQK2nFdN9t1K"
            "9b7s4eH3YkzW2kX8Pq1) at address node.example.net:28967: \"rpc: tcp connector "
            "failed: rpc: dial tcp 198.51.100.23:28967: connect: connection timed out\""
        )
        fields = self._fields(
            (self._key("Satellite ID", "satellite_id"), sat), ("attempts", 1 + int(
                self.rng.random() * 5)),
            ("error", text),
            ("errorVerbose", text + "\n\tstorj.io/storj/storagenode/contact.(*Service)."
             "pingSatelliteOnce:209\n\tstorj.io/storj/storagenode/contact.(*Service)."
             "pingSatellite:161"),
        )
        out.append(self._line(t, "ERROR", "contact:service", "ping satellite failed ", fields,
                              "ping_satellite_failed", short))

    def _ev_quic(self, t, out):
        short, sat = self._sat()
        text = (
            'contact: failed to ping storage node using QUIC, your node indicated error code: 0, '
            '"rpc: quic: timeout: no recent network activity"'
        )
        fields = self._fields((self._key("Satellite ID", "satellite_id"), sat),
                              (self._key("Error", "error"), text))
        out.append(self._line(
            t, "WARN", "contact:service",
            "Your node is still considered to be online but encountered an error.", fields,
            "quic_misconfigured", short))

    def _creation(self, t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t - 2 * _DAY)) + ".123456789Z"

    def _ev_bloomfilter(self, t, out):
        short, sat = self._sat()
        fields = self._fields(("satellite", sat), ("creation", self._creation(t)))
        out.append(self._line(t, "INFO", "piecestore", "New bloomfilter is received", fields,
                              "bloomfilter_received", short))

    def _ev_retain_prepared(self, t, out):
        short, sat = self._sat()
        fields = self._fields(
            (self._key("Created Before", "created_before"), self._creation(t)),
            (self._key("Filter Size", "filter_size"), 1 + int(self.rng.random() * 4_100_000)),
            (self._key("Satellite ID", "satellite_id"), sat),
        )
        out.append(self._line(t, "INFO", "retain", "Prepared to run a Retain request.", fields,
                              "retain_started", short))

    def _ev_retain_moved(self, t, out):
        short, sat = self._sat()
        rnd = self.rng.random
        deleted = int(rnd() * 50_000)
        if self.era.retain_fields == "old":
            fields = self._fields(("num deleted", deleted), ("Retain Status", "enabled"))
        else:
            snake = self.era.retain_fields == "snake"
            names = (("deleted_pieces", "failed_to_delete", "pieces_failed_to_read",
                      "pieces_count", "satellite_id", "duration", "retain_status") if snake
                     else ("Deleted pieces", "Failed to delete", "Pieces failed to read",
                           "Pieces count", "Satellite ID", "Duration", "Retain Status"))
            values = (deleted, 0, 0, deleted + int(rnd() * 3_000_000), sat,
                      self._go_duration(60 + rnd() * 7200), "enabled")
            fields = self._fields(*zip(names, values, strict=True))
        out.append(self._line(t, "INFO", "retain", "Moved pieces to trash during retain",
                              fields, "retain_finished", short))

    def _ev_trash_started(self, t, out):
        short, sat = self._sat()
        fields = self._fields((self._key("Satellite ID", "satellite_id"), sat))
        out.append(self._line(t, "INFO", "pieces:trash", "emptying trash started", fields,
                              "trash_empty_started", short))

    def _ev_trash_finished(self, t, out):
        short, sat = self._sat()
        fields = self._fields((self._key("Satellite ID", "satellite_id"), sat),
                              ("elapsed", self._go_duration(self.rng.random() * 900)))
        out.append(self._line(t, "INFO", "pieces:trash", "emptying trash finished", fields,
                              "trash_empty_finished", short))

    def _ev_usedspace_started(self, t, out):
        short, sat = self._sat()
        msg = "used-space-filewalker started"
        if self.era.filewalker == "lazy":  # the subprocess repeats the `process` key
            p = self.era.process_key
            fields = (f'{{"{p}": "storagenode", "satelliteID": "{sat}", '
                      f'"process": "storagenode"}}')
            logger = "lazyfilewalker.used-space-filewalker.subprocess"
        else:
            fields = self._fields((self._key("Satellite ID", "satellite_id"), sat))
            logger = "pieces"
        out.append(self._line(t, "INFO", logger, msg, fields,
                              "used_space_filewalker_started", short))

    def _ev_usedspace_completed(self, t, out):
        short, sat = self._sat()
        rnd = self.rng.random
        total = int(rnd() * 4e12)
        msg = "used-space-filewalker completed"
        if self.era.filewalker == "lazy":
            p = self.era.process_key
            fields = (f'{{"{p}": "storagenode", "satelliteID": "{sat}", "process": '
                      f'"storagenode", "piecesTotal": {total}, '
                      f'"piecesContentSize": {total - total // 200}}}')
            logger = "lazyfilewalker.used-space-filewalker.subprocess"
        else:
            snake = self.era.snake
            fields = self._fields(
                (self._key("Satellite ID", "satellite_id"), sat),
                (self._key("Lazy File Walker", "lazy_file_walker"), True),
                ("total_pieces_size" if snake else "Total Pieces Size", total),
                ("total_pieces_content_size" if snake else "Total Pieces Content Size",
                 total - total // 200),
                ("total_pieces_count" if snake else "Total Pieces Count", total // 700_000),
                (self._key("Duration", "duration"), self._go_duration(60 + rnd() * 20000)),
            )
            logger = "pieces"
        out.append(self._line(t, "INFO", logger, msg, fields,
                              "used_space_filewalker_completed", short))

    def _ev_updater(self, t, out):
        """The updater's check: three lines without a logger column."""
        k = self._key
        proc = "storagenode-updater"
        out.append(self._line(t, "INFO", None, "Downloading versions.", self._fields(
            (k("Server Address", "server_address"), "https://version.storj.io"), process=proc),
            None))
        service = "storagenode" if self.rng.random() < 0.5 else "storagenode-updater"
        out.append(self._line(t, "INFO", None, "Current binary version", self._fields(
            (k("Service", "service"), service), (k("Version", "version"), self.era.version),
            process=proc), None))
        out.append(self._line(t, "INFO", None, "Version is up to date", self._fields(
            (k("Service", "service"), service), process=proc), "version_up_to_date"))

