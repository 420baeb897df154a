"""Witnessed checkpoints (DESIGN §6): every signed checkpoint is published outside the database — an append-only
file, a git repository, an HTTP witness (`custody witness serve`, run here as a real server) — and `verify_audit
--witness` names any checkpoint the database lost or altered since."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from changecontrol import audit, verification, witnesses
from changecontrol.models import AuditCheckpoint
from common.keys import keyring
from tests.builders import triggers_off
from tests.changecontrol.test_sealed_records import verify_audit
from tests.conftest import LOW_RISK, open_change_request

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def some_history(product, cast):
    for _ in range(2):
        open_change_request(product=product, requester=cast["rory"], answers=LOW_RISK)


def checkpoint_published(django_capture_on_commit_callbacks) -> AuditCheckpoint:
    """A checkpoint taken as beat takes it: published by the task queued when its transaction commits."""
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = audit.checkpoint_create()
    return checkpoint


def remove_checkpoint(checkpoint: AuditCheckpoint) -> None:
    with triggers_off("changecontrol_auditcheckpoint") as cursor:
        cursor.execute("DELETE FROM changecontrol_auditcheckpoint WHERE id = %s", [checkpoint.pk])


def test_a_file_witness_keeps_each_checkpoint_once_and_names_one_removed(
    some_history, settings, tmp_path, django_capture_on_commit_callbacks
):
    path = tmp_path / "witness" / "checkpoints.jsonl"
    settings.CUSTODY_AUDIT_WITNESSES = [f"file:{path}"]
    first = checkpoint_published(django_capture_on_commit_callbacks)
    second = checkpoint_published(django_capture_on_commit_callbacks)
    # Published twice (the task retried after a lost acknowledgement): still one line per checkpoint.
    assert witnesses.checkpoint_publish(second) == {}
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert [entry["checkpoint"] for entry in kept] == [first.pk, second.pk]
    assert kept[0]["statement"] == first.statement().decode() and kept[0]["signature"] == first.signature
    assert verify_audit()[0] == 0
    remove_checkpoint(first)
    code, printed = verify_audit("--witness", f"file:{path}")
    assert code == 1
    assert f"checkpoint {first.pk}: (event #{first.event_id}" in printed
    assert "is at witness" in printed and "no longer in the database: it was removed" in printed


def test_an_altered_checkpoint_differs_from_its_witnessed_copy(
    some_history, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.CUSTODY_AUDIT_WITNESSES = [f"file:{tmp_path / 'w.jsonl'}"]
    checkpoint = checkpoint_published(django_capture_on_commit_callbacks)
    with triggers_off("changecontrol_auditcheckpoint") as cursor:
        cursor.execute(
            "UPDATE changecontrol_auditcheckpoint SET created_at = created_at - interval '1 day' WHERE id = %s",
            [checkpoint.pk],
        )
    report = verification.verify(witnesses=witnesses.configured())
    assert f"checkpoint {checkpoint.pk}: differs from its copy at witness file:{tmp_path / 'w.jsonl'}: " in "".join(
        str(finding) for finding in report.findings
    )
    assert "created_at" in str(report.findings)


def test_a_git_witness_commits_each_checkpoint(some_history, settings, tmp_path, django_capture_on_commit_callbacks):
    repository = tmp_path / "witness-repo"
    settings.CUSTODY_AUDIT_WITNESSES = [f"git:{repository}"]
    first = checkpoint_published(django_capture_on_commit_callbacks)
    checkpoint_published(django_capture_on_commit_callbacks)
    log = subprocess.run(
        ["git", "-C", str(repository), "log", "--format=%s"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(log) == 2 and log[-1] == f"Custody audit checkpoint {first.pk} (event #{first.event_id})"
    # An edit of the working tree that was never committed is not the witness's word.
    (repository / "checkpoints.jsonl").write_text("")
    assert verify_audit()[0] == 0
    remove_checkpoint(first)
    code, printed = verify_audit()
    assert code == 1 and f"checkpoint {first.pk}" in printed and "it was removed" in printed


@pytest.fixture
def http_witness(tmp_path):
    """`custody witness serve` as an operator runs it: a real server, trusting only Custody's public key."""
    key_file = tmp_path / "custody.pub"
    key_file.write_text(keyring().active_public_key_pem)
    token_file = tmp_path / "token"
    token_file.write_text("witness-secret\n")
    store = tmp_path / "kept.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "custody_cli.main",
            "witness",
            "serve",
            "--store",
            str(store),
            "--port",
            "0",
            "--key",
            str(key_file),
            "--token-file",
            str(token_file),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("Witness listening on http://"), line
        yield line.split()[3].rstrip("/,") + "/checkpoints", store
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_http_witness_keeps_what_it_is_sent_and_refuses_forgeries(
    some_history, settings, http_witness, django_capture_on_commit_callbacks
):
    url, store = http_witness
    settings.CUSTODY_AUDIT_WITNESSES = [url]
    settings.CUSTODY_AUDIT_WITNESS_TOKEN = "witness-secret"
    checkpoint = checkpoint_published(django_capture_on_commit_callbacks)
    assert [json.loads(line)["checkpoint"] for line in store.read_text().splitlines()] == [checkpoint.pk]
    entry = witnesses.checkpoint_entry(checkpoint)

    def post(document: dict, token: str = "witness-secret") -> int:
        request = urllib.request.Request(
            url,
            data=json.dumps(document).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert post(entry) == 200  # the same checkpoint again: acknowledged, nothing appended
    assert post({**entry, "event_hash": "f" * 64}) == 400  # the statement no longer says what the fields say
    forged = {**entry, "checkpoint": checkpoint.pk + 1, "signature": entry["signature"][::-1]}
    assert post(forged) == 403  # not Custody's signature
    assert post(entry, token="guess") == 401
    assert len(store.read_text().splitlines()) == 1
    assert verify_audit()[0] == 0
    remove_checkpoint(checkpoint)
    code, printed = verify_audit("--witness", url)
    assert code == 1 and f"checkpoint {checkpoint.pk}" in printed and f"is at witness {url}" in printed


def test_a_witness_that_is_down_is_retried_then_alerted(
    some_history, settings, product, django_capture_on_commit_callbacks
):
    from alerts.models import Alert

    settings.CUSTODY_AUDIT_WITNESSES = ["http://127.0.0.1:9/checkpoints"]  # the discard port: nothing listens
    checkpoint = checkpoint_published(django_capture_on_commit_callbacks)
    failed = audit_events("audit.witness_failed")
    assert failed and failed[-1]["checkpoint"] == checkpoint.pk
    assert Alert.objects.filter(product=product, event_kind="audit_integrity").exists()
    code, printed = verify_audit()
    assert code == 2 and "could not be read" in printed


def audit_events(action: str) -> list[dict]:
    from changecontrol.models import AuditEvent

    return list(AuditEvent.objects.filter(action=action).order_by("id").values_list("after", flat=True))


def test_witness_uris_custody_does_not_know_are_refused(some_history):
    with pytest.raises(ValueError, match="is not a file:, git: or http"):
        witnesses.witness_for("ftp://example.test/checkpoints")
    code, printed = verify_audit("--witness", "s3://bucket/key")
    assert code == 1 and "s3://bucket/key" in printed
    assert connection.vendor == "postgresql"
