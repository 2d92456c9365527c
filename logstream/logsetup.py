"""Log lines in logfmt (default) or JSON, like node_exporter's --log.format: one clear line
per problem."""

from __future__ import annotations

import json
import logging
import sys
import time

FORMATS = ("logfmt", "json")


def _stamp(record: logging.LogRecord) -> str:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{ts}.{int(record.msecs):03d}Z"


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage().replace("\\", "\\\\").replace('"', '\\"')
        line = f'ts={_stamp(record)} level={record.levelname.lower()} ' \
               f'source={record.name} msg="{msg}"'
        if record.exc_info:
            line += ' exc="' + self.formatException(record.exc_info).replace("\n", "\\n") + '"'
        return line.replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object a line with the keys of the logfmt format (ts, level, source, msg)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": _stamp(record), "level": record.levelname.lower(), "source": record.name,
               "msg": record.getMessage()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=True)


def setup(level: str = "info", fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("WARNING" if level == "warn" else level.upper())
