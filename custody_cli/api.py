"""HTTP to Custody's public API (DESIGN §7) with the standard library only, and the errors that set exit codes.

Every command reads the server and token the same way (``--url`` / ``CUSTODY_URL``, ``--token`` /
``CUSTODY_TOKEN``) and reports failures through three exceptions, each carrying its exit code:

- ``UsageError`` (3): the command line or its environment is wrong;
- ``Refused`` (1): Custody understood the request and said no (HTTP 4xx), or evidence failed processing;
- ``ServerError`` (4): Custody could not be reached, failed (HTTP 5xx) or answered something unreadable.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

EXIT_REFUSED = 1
EXIT_USAGE = 3
EXIT_SERVER = 4
REQUEST_TIMEOUT_SECONDS = 30.0
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
USER_AGENT = "custody-cli/0.1"
# A 4xx that is not the request's fault: asking again later may succeed, so it counts as a server error.
_TRANSIENT_CLIENT_ERRORS = {408, 425, 429}


class CliError(Exception):
    """A command ended early; the message is printed after `custody: ` and `exit_code` is returned."""

    exit_code = EXIT_SERVER


class UsageError(CliError):
    """The command line or its environment is wrong (exit 3); the message says what to pass."""

    exit_code = EXIT_USAGE


class ServerError(CliError):
    """Custody could not be reached or answered with an error (exit 4); the message says what it said."""

    exit_code = EXIT_SERVER


class ConnectionCut(ServerError):
    """The server closed the connection mid-request, as it may when it refuses an upload before reading it all."""


class Refused(CliError):
    """Custody refused the request or the evidence (exit 1); the message carries the server's own sentence."""

    exit_code = EXIT_REFUSED


def setting(value: str | None, *, env: str, option: str) -> str:
    """An option's value, else its environment variable's, else a UsageError naming both."""
    value = value or os.environ.get(env, "")
    if not value.strip():
        raise UsageError(f"no {option} given: pass {option} or set {env}")
    return value.strip()


def api_url(*, base_url: str, path: str, query: dict[str, str] | None = None) -> str:
    try:
        parsed = urllib.parse.urlsplit(base_url)
    except ValueError as exc:
        raise UsageError(f"the Custody URL {base_url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"the Custody URL must start with https:// (or http://), not {base_url!r}")
    url = base_url.rstrip("/") + path
    return f"{url}?{urllib.parse.urlencode(query)}" if query else url


def error_text(body: bytes) -> str:
    """The server's `{"error", "detail"}` as one line, or the start of whatever it sent instead."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        text = body.decode("utf-8", errors="replace").strip()
        return text[:300] if text else "(empty body)"
    if isinstance(document, dict) and ("error" in document or "detail" in document):
        code, detail = document.get("error"), document.get("detail")
        return ": ".join(str(part) for part in (code, detail) if part)
    return json.dumps(document)[:300]


def _open(request: urllib.request.Request, *, url: str) -> tuple[int, bytes]:
    """Send one request and return (status, body); HTTP errors propagate as HTTPError for the caller to judge."""
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310 - see api_url
            status, body = response.status, response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError:
        raise
    except urllib.error.URLError as exc:
        error = ConnectionCut if isinstance(exc.reason, BrokenPipeError | ConnectionResetError) else ServerError
        raise error(f"cannot reach Custody at {url}: {exc.reason}") from None
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise ConnectionCut(f"Custody closed the connection at {url}: {exc}") from None
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise ServerError(f"cannot reach Custody at {url}: {exc}") from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise ServerError(f"Custody's answer from {url} is larger than {MAX_RESPONSE_BYTES} bytes")
    return status, body


def _request(url: str, *, method: str, token: str | None, body: bytes | None = None, content_type: str = ""):
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    return urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 - see api_url


def _json_of(body: bytes, *, url: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ServerError(f"Custody's answer from {url} is not JSON: {error_text(body)}") from None


def get_json(*, url: str, token: str | None) -> Any:
    """GET a Custody API URL and return its JSON; every failure, a 4xx included, is a ServerError (`custody gate`)."""
    try:
        _, body = _open(_request(url, method="GET", token=token), url=url)
    except urllib.error.HTTPError as exc:
        body = exc.read(MAX_RESPONSE_BYTES) if exc.fp else b""
        hint = {401: " (check CUSTODY_TOKEN / --token)", 403: " (the token lacks the status:read scope)"}
        raise ServerError(f"Custody answered HTTP {exc.code}{hint.get(exc.code, '')}: {error_text(body)}") from None
    return _json_of(body, url=url)


def call(
    *,
    method: str,
    url: str,
    token: str,
    body: bytes | None = None,
    content_type: str = "",
    not_found_hint: str = "",
    sending: str = "",
) -> tuple[int, dict[str, Any]]:
    """Send one API request and return (status, JSON object).

    A 4xx answer raises Refused with the server's `error: detail` (and `not_found_hint` on 404); a 5xx, a
    network failure or an answer that is not a JSON object raises ServerError. `sending` names the upload, so a
    connection the server cut mid-upload (what an over-limit file may meet) says which file was being sent.
    """
    try:
        status, raw = _open(_request(url, method=method, token=token, body=body, content_type=content_type), url=url)
    except urllib.error.HTTPError as exc:
        raw = exc.read(MAX_RESPONSE_BYTES) if exc.fp else b""
        hints = {401: " (check CUSTODY_TOKEN / --token)", 404: f" ({not_found_hint})" if not_found_hint else ""}
        message = f"Custody answered HTTP {exc.code}{hints.get(exc.code, '')}: {error_text(raw)}"
        if 400 <= exc.code < 500 and exc.code not in _TRANSIENT_CLIENT_ERRORS:
            raise Refused(message) from None
        raise ServerError(message) from None
    except ConnectionCut as exc:
        if sending:
            raise ConnectionCut(
                f"{exc} — while sending {sending}; if it is larger than the server's upload limit "
                "(CUSTODY_MAX_UPLOAD_MB, 50 MB unless changed) Custody refuses it, otherwise try again"
            ) from None
        raise
    document = _json_of(raw, url=url)
    if not isinstance(document, dict):
        raise ServerError(f"Custody's answer from {url} must be a JSON object, not {type(document).__name__}")
    return status, document
