"""A real OTLP/HTTP log sender for tests: the OpenTelemetry Python SDK's OTLPLogExporter,
emitting records shaped like the modular storagenode's (storj/storj v1.162: the otelzap
bridge v0.19 under shared/modular/logger, piecestore/endpoint.go's fields).

    python tests/otlp_sender.py ENDPOINT_URL SCENARIO_JSON

SCENARIO_JSON: {"instance": "n1" | null, "gzip": bool, "auth": "Basic ..." | null,
"transfers": {"uploaded": N, "downloaded": N, "download failed": N, "upload canceled": N,
"upload started": N, "download started": N}, "other": N}
Prints one line per export: `export ok` / `export failed`; exits 0 if all were ok.
"""

from __future__ import annotations

import json
import sys

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
PIECE = "2CVMBXQDKBW5Q7RZRKXBTDGMGRWXOXEBHYFAXJL6L2EH3L3RVZI{:01d}"
LEVELS = {"debug": SeverityNumber.DEBUG, "info": SeverityNumber.INFO,
          "warn": SeverityNumber.WARN, "error": SeverityNumber.ERROR}
results: list[bool] = []


class Recording(OTLPLogExporter):
    def export(self, batch):
        result = super().export(batch)
        ok = result == LogRecordExportResult.SUCCESS
        results.append(ok)
        print("export ok" if ok else "export failed", flush=True)
        return result


def fields(kind: str, i: int) -> dict:
    """The `log.With` fields of endpoint.go (upload / download), then the call's."""
    piece = PIECE.format(i % 8)
    if kind.startswith("upload"):
        base = {"piece_id": piece, "satellite_id": US1,
                "action": "PUT", "remote_address": f"10.1.{i % 250}.7:41080"}
        if kind == "upload started":
            return {**base, "available_space": 9_000_000_000_000}
        return {**base, "size": 2_319_872}
    base = {"piece_id": piece, "satellite_id": US1, "action": "GET", "offset": 0,
            "size": 1_024 * (1 + i % 64), "remote_address": f"10.2.{i % 250}.9:28967"}
    if kind == "download failed":  # zap.Error(err) is the record's error -> exception.*
        return {**base, "exception.message": "file does not exist",
                "exception.type": "*errs.errorT"}
    return base


LEVEL_OF = {"upload started": "debug", "download started": "debug", "uploaded": "info",
            "downloaded": "info", "upload canceled": "info", "download failed": "error"}


def main() -> int:
    endpoint, scenario = sys.argv[1], json.loads(sys.argv[2])
    attrs = {"service.name": "storj", "host.name": "nas"}
    if scenario.get("instance"):
        attrs["service.instance.id"] = scenario["instance"]
    headers = {"Authorization": scenario["auth"]} if scenario.get("auth") else None
    exporter = Recording(endpoint=endpoint, headers=headers, timeout=10,
                         compression=Compression.Gzip if scenario.get("gzip")
                         else Compression.NoCompression)
    provider = LoggerProvider(resource=Resource.create(attrs))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=64))
    piecestore = provider.get_logger("piecestore:endpoint")
    for kind, count in scenario.get("transfers", {}).items():
        for i in range(count):
            level = LEVEL_OF[kind]
            piecestore.emit(body=kind, severity_text=level, severity_number=LEVELS[level],
                            attributes=fields(kind, i))
    contact = provider.get_logger("contact:service")
    for _ in range(scenario.get("other", 0)):
        contact.emit(body="ping satellite failed ", severity_text="warn",
                     severity_number=SeverityNumber.WARN,
                     attributes={"satellite_id": US1, "attempts": 1,
                                 "exception.message": "ping satellite: context canceled"})
    provider.force_flush(20_000)
    provider.shutdown()
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
