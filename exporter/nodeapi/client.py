"""One GET against the dashboard API with a hard deadline and a one-line reason on failure.

`requests` applies its read timeout per socket read, so a node that drips bytes could hold a
poll forever; the body is therefore read in chunks against a total deadline.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

MAX_BODY = 64 * 1024 * 1024  # the largest real answers (satellite details) are a few 100 kB
CONNECT_TIMEOUT = 5.0


class ApiError(Exception):
    """A failed request; the message is short enough for one log line."""


def _error_text(resp: requests.Response, body: bytes) -> str:
    """The node answers errors as {"error": "..."}; anything else is summarised."""
    try:
        text = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        text = ""
    text = " ".join(str(text).split())[:200]  # one log line, whatever the node sent
    return f"HTTP {resp.status_code}" + (f": {text}" if text else "")


def get_json(session: requests.Session, url: str, timeout: float) -> Any:
    """GET `url` and decode JSON, or raise ApiError within about `timeout` seconds."""
    deadline = time.monotonic() + timeout
    try:
        resp = session.get(
            url,
            timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
            stream=True,
            headers={"Accept": "application/json"},
        )
    except requests.Timeout as exc:
        raise ApiError(f"timed out after {timeout:g}s") from exc
    except requests.ConnectionError as exc:
        raise ApiError(f"cannot connect: {_short(exc)}") from exc
    except requests.RequestException as exc:
        raise ApiError(f"request failed: {_short(exc)}") from exc
    try:
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.iter_content(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY:
                raise ApiError(f"answer larger than {MAX_BODY} bytes")
            if time.monotonic() > deadline:
                raise ApiError(f"timed out after {timeout:g}s (answer still arriving)")
        body = b"".join(chunks)
    except requests.Timeout as exc:
        raise ApiError(f"timed out after {timeout:g}s") from exc
    except requests.RequestException as exc:
        raise ApiError(f"answer cut off: {_short(exc)}") from exc
    finally:
        resp.close()
    if resp.status_code != 200:
        raise ApiError(_error_text(resp, body))
    ctype = resp.headers.get("Content-Type", "")
    if "html" in ctype or body.lstrip()[:1] == b"<":
        raise ApiError(f"answered HTML, not JSON ({ctype or 'no content type'}); "
                       "is this the dashboard address (port 14002)?")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ApiError(f"invalid JSON ({len(body)} bytes): {exc}") from exc


def _short(exc: Exception) -> str:
    """requests nests urllib3 errors several levels deep; keep the innermost reason."""
    inner: BaseException = exc
    while inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    text = str(reason or inner)
    return text[:200]
