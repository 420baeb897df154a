"""Nothing stays in flight: every evidence ends parsed, rejected or failed with a reason (issue 16, item 4).

Whatever the input (recursion, NUL, lone surrogates), whatever happens to the task (retries exhausted, a lost
message, a worker stopped mid-task, the broker down at upload). Real-worker tests are in test_worker.py.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from changecontrol.models import AuditEvent
from evidence import services
from evidence.models import Evidence, SbomComponent, StaticFinding
from evidence.processing import evidence_sweep
from evidence.tasks import process_evidence
from tests.evidence.conftest import DIGEST, evidence_of
from tests.samples import sample_bytes

pytestmark = pytest.mark.django_db

DEEP = 10_000


def _sarif_with_nul() -> bytes:
    log = json.loads(sample_bytes("sarif/trivy-alpine-310.sarif"))
    log["runs"][0]["tool"]["driver"]["name"] = "Tri\u0000vy"
    log["runs"][0]["results"][0]["ruleId"] = "CVE-\u00002019"
    log["runs"][0]["results"][0]["partialFingerprints"] = {"x": "\u0000"}
    return json.dumps(log).encode()


def _cyclonedx_with_lone_surrogate() -> bytes:
    text = sample_bytes("sbom/cyclonedx-1.6-cyclonedx-py-pipenv.json").decode()
    document = json.loads(text)
    name = document["components"][0]["name"]
    return text.replace(f'"name": "{name}"', f'"name": "{name}\\ud800"', 1).encode()


def test_a_dsse_envelope_nested_ten_thousand_deep_fails_with_a_reason(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "dsse", b"[" * DEEP + b"]" * DEEP))
    assert evidence.state == "failed"
    assert "nests deeper than can be read" in evidence.error


def test_a_statement_nested_ten_thousand_deep_inside_a_signed_envelope_fails_with_a_reason(
    upload, artifact, registered_key
):
    from evidence.verification import pae

    payload = b'{"_type": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    signature = registered_key.sign(pae("application/vnd.in-toto+json", payload))
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    evidence = evidence_of(upload(DIGEST, "dsse", json.dumps(envelope).encode()))
    assert evidence.state == "failed" and evidence.error


def test_sarif_with_nul_characters_is_parsed_with_the_nul_removed(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "sarif", _sarif_with_nul()))

    assert evidence.state == "parsed", evidence.error
    assert evidence.summary["tools"] == ["Trivy"]
    assert StaticFinding.objects.filter(evidence=evidence, rule_id="CVE-2019").exists()
    assert not any(
        "\x00" in f for f in StaticFinding.objects.filter(evidence=evidence).values_list("fingerprint", flat=True)
    )


def test_cyclonedx_with_a_lone_surrogate_is_parsed_with_it_replaced_and_says_so(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "cyclonedx", _cyclonedx_with_lone_surrogate()))

    assert evidence.state == "parsed", evidence.error
    assert SbomComponent.objects.filter(evidence=evidence, name__endswith="\ufffd").count() == 1
    assert any("lone UTF-16 surrogate" in w for w in evidence.summary["warnings"])


def _pending(ci_account, artifact, content: bytes = b'<testsuite name="s"><testcase name="t"/></testsuite>'):
    """An evidence whose processing task never ran (its on_commit callback is not executed here)."""
    evidence, _ = services.evidence_receive_bytes(
        artifact=artifact, actor=ci_account, evidence_type="junit", data=content
    )
    return evidence


def test_the_sweep_requeues_pending_evidence_whose_task_was_lost(ci_account, artifact):
    evidence = _pending(ci_account, artifact)

    assert evidence_sweep()["requeued"] == 0  # just uploaded: its task may still be on its way
    later = timezone.now() + timedelta(minutes=3)
    assert evidence_sweep(now=later)["requeued"] == 1
    evidence.refresh_from_db()
    assert evidence.state == "parsed"
    assert evidence_sweep(now=later)["requeued"] == 0


def test_the_sweep_reruns_processing_stuck_past_the_deadline_then_fails_it(ci_account, artifact, settings):
    evidence = _pending(ci_account, artifact)
    Evidence.objects.filter(pk=evidence.pk).update(state="processing", attempts=1)  # a worker died mid-task
    settings.CUSTODY_EVIDENCE_MAX_ATTEMPTS = 2

    assert evidence_sweep(now=timezone.now() + timedelta(minutes=29)) == {"requeued": 0, "rerun": 0, "failed": 0}
    assert evidence_sweep(now=timezone.now() + timedelta(minutes=31))["rerun"] == 1
    evidence.refresh_from_db()
    assert (evidence.state, evidence.attempts) == ("parsed", 2)

    stuck = _pending(ci_account, artifact, b'<testsuite name="other"><testcase name="t"/></testsuite>')
    Evidence.objects.filter(pk=stuck.pk).update(state="processing", attempts=2)
    assert evidence_sweep(now=timezone.now() + timedelta(minutes=31))["failed"] == 1
    stuck.refresh_from_db()
    assert stuck.state == "failed"
    assert "did not finish within 30 minutes in 2 attempts" in stuck.error
    assert AuditEvent.objects.filter(action="evidence.failed", object_id=str(stuck.pk)).exists()


def test_a_task_that_exhausts_its_retries_fails_the_evidence_with_the_reason(ci_account, artifact):
    evidence = _pending(ci_account, artifact)
    default_storage.delete(evidence.storage_name)  # the storage cannot give the bytes back

    result = process_evidence.apply(args=(evidence.pk,), retries=process_evidence.max_retries)

    assert result.result == "failed"
    evidence.refresh_from_db()
    assert evidence.state == "failed"
    assert evidence.error.startswith("gave up after 6 retries:")


def test_an_upload_while_the_broker_is_down_answers_202_and_is_processed_once_it_returns(
    api, ci_token, artifact, django_capture_on_commit_callbacks, settings
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from config.celery import app

    # A Redis port where nothing listens: the broker is down (the shared Redis server is left alone).
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app._pool = None  # pylint: disable=protected-access  # connect anew to the broker named above
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = api(token=ci_token).post(
                f"/api/v1/artifacts/{DIGEST}/evidence",
                {
                    "type": "junit",
                    "file": SimpleUploadedFile("r.xml", b'<testsuite name="s"><testcase name="t"/></testsuite>'),
                },
                format="multipart",
            )
    finally:
        app.conf.task_always_eager = True
        app.conf.broker_url = settings.CELERY_BROKER_URL
        app._pool = None  # pylint: disable=protected-access

    assert response.status_code == 202, response.content
    evidence = evidence_of(response)
    assert evidence.state == "pending"
    assert AuditEvent.objects.filter(action="evidence.uploaded", object_id=str(evidence.pk)).count() == 1
    assert evidence_sweep(now=timezone.now() + timedelta(minutes=3))["requeued"] == 1
    evidence.refresh_from_db()
    assert evidence.state == "parsed"


def test_an_error_nobody_foresaw_fails_the_evidence_with_its_reason(upload, artifact, monkeypatch):
    from evidence import facts

    def broken_parser(evidence, raw):
        raise ZeroDivisionError("a parser bug")

    monkeypatch.setitem(facts.PARSERS, "lcov", broken_parser)
    evidence = evidence_of(upload(DIGEST, "lcov", b"SF:a.py\nDA:1,1\nend_of_record\n"))

    assert evidence.state == "failed"
    assert evidence.error == (
        "processing stopped on an error nobody foresaw (ZeroDivisionError: a parser bug); reprocess it once the "
        "cause is fixed"
    )
