"""`custody gate` and `custody keys` against a real local HTTP server standing in for Custody's API."""

import json
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common.signing import Keyring, generate_private_key_pem
from custody_cli import main as cli
from custody_cli.bundle import build_bundle
from custody_cli.main import main

DIGEST = "sha256:" + "ab" * 32
TOKEN = "cust_test_token"


def status(decision: str, **overrides) -> dict:
    document = {
        "decision": decision,
        "product": "rsd",
        "release": "7.2.4",
        "promotion": "PRM-12",
        "environment": "production",
        "policy": {"name": "rsd-release", "version": 3, "digest": "sha256:" + "cd" * 32},
        "gates": [
            {"id": "tests", "kind": "junit", "blocking": True, "status": "pass", "detail": "412 passed"},
            {"id": "coverage", "kind": "coverage", "blocking": True, "status": "fail", "detail": "71% < 80%"},
            {"id": "sbom", "kind": "sbom", "blocking": True, "status": "missing", "detail": "no SBOM uploaded"},
            {"id": "lint", "kind": "sarif", "blocking": False, "status": "fail", "detail": "3 warnings"},
        ],
        "approvals": {"required": ["quality", "security"], "signed": ["quality"], "missing": ["security"]},
        "reasons": ["coverage gate failed", "approval by security reviewer missing"],
        "evaluated_at": "2025-03-04T05:06:07Z",
    }
    document.update(overrides)
    return document


ALLOWED = status(
    "allowed",
    gates=[{"id": "tests", "kind": "junit", "blocking": True, "status": "pass", "detail": "412 passed"}],
    approvals={"required": ["quality"], "signed": ["quality"], "missing": []},
    reasons=[],
)


class FakeCustody(BaseHTTPRequestHandler):
    """Answers GETs from the server's queue of (HTTP status, body); the last answer repeats."""

    def do_GET(self):
        server = self.server
        server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization")})
        code, body = server.answers[0] if len(server.answers) == 1 else server.answers.pop(0)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # keep pytest output clean
        pass


@pytest.fixture
def custody():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCustody)
    server.answers = [(200, ALLOWED)]
    server.requests = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def no_custody_environment(monkeypatch):
    monkeypatch.delenv("CUSTODY_URL", raising=False)
    monkeypatch.delenv("CUSTODY_TOKEN", raising=False)


def gate(server_url: str, *extra: str) -> int:
    return main(
        ["gate", "--artifact", DIGEST, "--environment", "production", "--url", server_url, "--token", TOKEN, *extra]
    )


def test_allowed_exits_0_and_sends_the_token_and_query(custody, capsys):
    assert gate(custody.url) == 0
    out = capsys.readouterr().out
    assert "Decision: ALLOWED — rsd 7.2.4 (PRM-12) → production" in out
    assert "policy: rsd-release v3" in out
    request = custody.requests[0]
    assert request["authorization"] == f"Bearer {TOKEN}"
    path, _, query = request["path"].partition("?")
    assert path == "/api/v1/status"
    assert urllib.parse.parse_qs(query) == {"artifact": [DIGEST], "environment": ["production"]}


def test_blocked_exits_1_and_names_failing_gates_missing_approvals_and_reasons(custody, capsys):
    custody.answers = [(200, status("blocked"))]
    assert gate(custody.url) == 1
    out = capsys.readouterr().out
    assert "Decision: BLOCKED" in out
    assert "gate coverage (coverage) fail: 71% < 80%" in out
    assert "gate sbom (sbom) missing: no SBOM uploaded" in out
    assert "gate tests" not in out  # passed
    assert "gate lint" not in out  # not blocking
    assert "missing approval: security" in out
    assert "reason: coverage gate failed" in out
    assert "reason: approval by security reviewer missing" in out


def test_missing_approvals_given_as_objects_or_a_count_are_printed(custody, capsys):
    custody.answers = [(200, status("pending", approvals={"required": 2, "signed": 1, "missing": 1}))]
    assert gate(custody.url) == 2
    assert "missing approvals: 1 of 2" in capsys.readouterr().out
    custody.answers = [
        (200, status("pending", approvals={"missing": [{"role": "quality reviewer", "meaning": "approved"}]}))
    ]
    assert gate(custody.url) == 2
    assert "missing approval: quality reviewer — approved" in capsys.readouterr().out


def test_pending_exits_2(custody, capsys):
    custody.answers = [(200, status("pending", gates=[], reasons=["awaiting approval by quality reviewer"]))]
    assert gate(custody.url) == 2
    out = capsys.readouterr().out
    assert "Decision: PENDING" in out
    assert "reason: awaiting approval by quality reviewer" in out
    assert len(custody.requests) == 1  # no --wait: asked once


def test_wait_polls_while_pending_until_allowed(custody, monkeypatch, capsys):
    monkeypatch.setattr(cli, "POLL_INTERVAL_SECONDS", 0.01)
    custody.answers = [(200, status("pending")), (200, status("pending")), (200, ALLOWED)]
    assert gate(custody.url, "--wait", "30") == 0
    assert len(custody.requests) == 3
    captured = capsys.readouterr()
    assert "Decision: ALLOWED" in captured.out
    assert "pending; asking again" in captured.err


def test_wait_gives_up_pending_after_the_deadline(custody, monkeypatch):
    monkeypatch.setattr(cli, "POLL_INTERVAL_SECONDS", 0.02)
    custody.answers = [(200, status("pending"))]
    assert gate(custody.url, "--wait", "0.1") == 2
    assert 2 <= len(custody.requests) <= 10


def test_wait_polls_every_ten_seconds_by_default(custody, monkeypatch):
    slept = []
    monkeypatch.setattr(cli.time, "sleep", slept.append)
    custody.answers = [(200, status("pending")), (200, status("blocked"))]
    assert gate(custody.url, "--wait", "600") == 1
    assert slept == [10.0]


def test_unauthorised_exits_4_printing_the_servers_error(custody, capsys):
    custody.answers = [(401, {"error": "not_authenticated", "detail": "The token is missing, expired or revoked."})]
    assert gate(custody.url) == 4
    err = capsys.readouterr().err
    assert "Custody answered HTTP 401 (check CUSTODY_TOKEN / --token)" in err
    assert "not_authenticated: The token is missing, expired or revoked." in err


def test_server_error_without_json_exits_4(custody, capsys):
    custody.answers = [(502, b"<html>Bad Gateway</html>")]
    assert gate(custody.url) == 4
    assert "HTTP 502: <html>Bad Gateway</html>" in capsys.readouterr().err


def test_connection_refused_exits_4(capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert gate(f"http://127.0.0.1:{port}") == 4
    assert f"cannot reach Custody at http://127.0.0.1:{port}/api/v1/status" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "is not JSON"),
        ([1, 2], "must be a JSON object, not list"),
        ({"decision": "maybe"}, "decision: expected allowed, blocked or pending, got 'maybe'"),
        ({"decision": "blocked", "gates": {"id": "x"}}, "gates: expected a JSON array"),
        ({"decision": "blocked", "gates": ["coverage"]}, "gates[0]: expected an object"),
    ],
)
def test_wrong_shape_answers_exit_4_naming_the_field(custody, capsys, body, message):
    custody.answers = [(200, body)]
    assert gate(custody.url) == 4
    assert message in capsys.readouterr().err


def test_json_flag_prints_the_status_document(custody, capsys):
    custody.answers = [(200, status("blocked"))]
    assert gate(custody.url, "--json") == 1
    assert json.loads(capsys.readouterr().out) == status("blocked")


def test_url_and_token_default_from_the_environment(custody, monkeypatch):
    monkeypatch.setenv("CUSTODY_URL", custody.url + "/")
    monkeypatch.setenv("CUSTODY_TOKEN", "from-env")
    assert main(["gate", "--artifact", DIGEST, "--environment", "production"]) == 0
    assert custody.requests[0]["authorization"] == "Bearer from-env"
    assert custody.requests[0]["path"].startswith("/api/v1/status?")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["gate", "--artifact", DIGEST, "--environment", "production", "--token", "t"],
            "pass --url or set CUSTODY_URL",
        ),
        (["gate", "--artifact", DIGEST, "--environment", "production", "--url", "http://x"], "set CUSTODY_TOKEN"),
        (["gate", "--artifact", "ab" * 32, "--environment", "production"], "--artifact must be sha256:<64 hex"),
        (
            ["gate", "--artifact", DIGEST, "--environment", "p", "--url", "ftp://x", "--token", "t"],
            "must start with https://",
        ),
        (["gate", "--artifact", DIGEST], "the following arguments are required: --environment"),
        (["gate", "--artifact", DIGEST, "--environment", "p", "--wait", "soon"], "invalid float value"),
        (["deploy"], "invalid choice: 'deploy'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_and_configuration_errors_exit_3(capsys, argv, message):
    assert main(argv) == 3
    assert message in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["gate", "--help"]) == 0
    assert "--artifact" in capsys.readouterr().out


# keys -------------------------------------------------------------------------------------------------------


def test_keys_prints_pem_blocks_usable_with_verify_bundle(custody, tmp_path, capsys):
    old = Keyring(active_private_key_pem=generate_private_key_pem())
    keyring = Keyring(
        active_private_key_pem=generate_private_key_pem(),
        retired_public_key_pems=[old.active_public_key_pem],
    )
    custody.answers = [(200, {"keys": keyring.public_keys()})]
    assert main(["keys", "--url", custody.url]) == 0
    captured = capsys.readouterr()
    assert custody.requests[0]["path"] == "/api/v1/keys"
    assert captured.out == keyring.active_public_key_pem + old.active_public_key_pem
    assert f"# {keyring.key_id} (active, ed25519)" in captured.err
    assert f"# {old.key_id} (retired, ed25519)" in captured.err

    # The documented round trip: `custody keys > custody.pub`, then `verify-bundle --key custody.pub`.
    key_file = tmp_path / "custody.pub"
    key_file.write_text(captured.out)
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(
        build_bundle(files={"a.txt": b"a"}, subject={}, created_at="2025-01-01T00:00:00Z", sign=old.sign_detached)
    )
    assert main(["verify-bundle", str(bundle), "--key", str(key_file)]) == 0  # retired keys still verify


def test_keys_accepts_a_bare_list(custody, capsys):
    keyring = Keyring(active_private_key_pem=generate_private_key_pem())
    custody.answers = [(200, keyring.public_keys())]
    assert main(["keys", "--url", custody.url]) == 0
    assert capsys.readouterr().out == keyring.active_public_key_pem


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"keys": "nope"}, "must be a list of keys"),
        ({"keys": [{"key_id": "x"}]}, "keys[0].public_key_pem: expected a PEM public key"),
        ({"keys": []}, "returned no public keys"),
    ],
)
def test_keys_wrong_shape_exits_4(custody, capsys, body, message):
    custody.answers = [(200, body)]
    assert main(["keys", "--url", custody.url]) == 4
    assert message in capsys.readouterr().err


def test_keys_without_url_exits_3(capsys):
    assert main(["keys"]) == 3
    assert "pass --url or set CUSTODY_URL" in capsys.readouterr().err


def test_malformed_url_exits_3(capsys):
    assert gate("http://[not-an-ipv6") == 3
    assert "is not a URL" in capsys.readouterr().err
