"""`custody witness serve`: an HTTP witness that keeps every audit checkpoint Custody sends it (DESIGN §6).

Run it on a host the Custody database owner does not control. It accepts `POST` of one checkpoint (the JSON Custody's
`changecontrol.witnesses.HttpWitness` sends), appends it to a JSON-lines file and never rewrites a line: the same
checkpoint sent again is acknowledged, a different one under the same number is refused (409). `GET` answers every
checkpoint it holds as a JSON list, which `verify_audit --witness URL` compares with the database.

With `--key custody.pub` (from `custody keys`) it keeps only checkpoints carrying Custody's signature over their
statement; with `--token-file` it asks for `Authorization: Bearer <token>` on every request.
Standard library and `cryptography` only, like the rest of this client.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hmac
import json
import os
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature

MAX_BODY_BYTES = 64 * 1024
FIELDS = ("checkpoint", "event_id", "event_hash", "event_count", "created_at", "key_id", "signature", "statement")


class Refused(Exception):
    def __init__(self, status: HTTPStatus, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class Store:
    """The append-only JSON-lines file: read whole, appended one fsynced line at a time under a lock."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()

    def held(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def keep(self, entry: dict[str, Any]) -> bool:
        """True when appended; False when this very checkpoint was already kept; Refused for a different copy."""
        with self.lock, self.path.open("a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            for line in handle.read().splitlines():
                if line.strip() and json.loads(line).get("checkpoint") == entry["checkpoint"]:
                    if json.loads(line) == entry:
                        return False
                    raise Refused(HTTPStatus.CONFLICT, f"checkpoint {entry['checkpoint']} is already kept, differently")
            handle.write(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            return True


def check_entry(entry: Any, *, trusted: dict | None) -> dict[str, Any]:
    """The checkpoint as sent, after refusing anything that is not one (or, with keys, not signed by Custody)."""
    if not isinstance(entry, dict):
        raise Refused(HTTPStatus.BAD_REQUEST, "send one checkpoint as a JSON object")
    missing = [name for name in FIELDS if name not in entry]
    if missing:
        raise Refused(HTTPStatus.BAD_REQUEST, f"the checkpoint lacks {', '.join(missing)}")
    if not isinstance(entry["checkpoint"], int) or not isinstance(entry["event_id"], int):
        raise Refused(HTTPStatus.BAD_REQUEST, "checkpoint and event_id are whole numbers")
    statement = (
        f"custody-audit-checkpoint/1 event={entry['event_id']} hash={entry['event_hash']} at={entry['created_at']}"
    )
    if entry["statement"] != statement:
        raise Refused(HTTPStatus.BAD_REQUEST, "the statement does not say what the checkpoint's fields say")
    if trusted is not None:
        key = trusted.get(entry["key_id"])
        if key is None:
            raise Refused(HTTPStatus.FORBIDDEN, f"key {entry['key_id']} is not among the --key keys")
        try:
            key.verify(base64.b64decode(entry["signature"], validate=True), statement.encode())
        except (binascii.Error, ValueError, TypeError, InvalidSignature):
            raise Refused(HTTPStatus.FORBIDDEN, "the signature is not Custody's") from None
    return entry


def make_handler(*, store: Store, trusted: dict | None, token: str):
    class WitnessHandler(BaseHTTPRequestHandler):
        server_version = "custody-witness"

        def _answer(self, status: HTTPStatus, document: Any) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            if not token:
                return True
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return True
            self._answer(HTTPStatus.UNAUTHORIZED, {"error": "unauthorised", "detail": "send the witness token"})
            return False

        def do_GET(self):  # noqa: N802 - the http.server naming
            if self._authorised():
                self._answer(HTTPStatus.OK, store.held())

        def do_POST(self):  # noqa: N802
            if not self._authorised():
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY_BYTES:
                    raise Refused(HTTPStatus.BAD_REQUEST, f"send one checkpoint of at most {MAX_BODY_BYTES} bytes")
                try:
                    entry = json.loads(self.rfile.read(length))
                except ValueError:
                    raise Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
                kept = store.keep(check_entry(entry, trusted=trusted))
            except Refused as refusal:
                self._answer(refusal.status, {"error": refusal.status.phrase.lower(), "detail": refusal.detail})
                return
            self._answer(HTTPStatus.CREATED if kept else HTTPStatus.OK, {"checkpoint": entry["checkpoint"]})

        def log_message(self, format, *args):  # noqa: A002 - the http.server signature
            print(f"witness: {self.address_string()} {format % args}", flush=True)

    return WitnessHandler


def serve(*, store_path: Path, host: str, port: int, trusted: dict | None, token: str) -> None:
    store_path.parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((host, port), make_handler(store=Store(store_path), trusted=trusted, token=token))
    print(f"Witness listening on http://{host}:{server.server_port}/, keeping {store_path}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
