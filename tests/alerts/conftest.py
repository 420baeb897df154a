"""A local webhook receiver (a real HTTP server on 127.0.0.1, port 0) and alert fixtures."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts import services


class Receiver:
    """Records every request; answers with the scripted statuses in turn, then with the last one forever."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — the http.server API
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver is down")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/custody"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    started = []

    def start(*statuses: int) -> Receiver:
        receiver = Receiver(list(statuses) or [200]).__enter__()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.__exit__()


@pytest.fixture
def webhook(product, admin_user, receiver_factory):
    """A webhook subscription of rsd to drift alerts, pointing at a receiver that answers 200."""
    receiver = receiver_factory(200)
    subscription, secret = services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="webhook", target=receiver.url
    )
    return subscription, secret, receiver
