"""Processing states, errors naming the line, hardened XML, and idempotent re-runs (issue 3, item 3)."""

from __future__ import annotations

import pytest

from changecontrol.models import AuditEvent
from evidence.models import Evidence, TestResult
from evidence.processing import evidence_process
from tests.evidence.conftest import DIGEST, evidence_of

pytestmark = pytest.mark.django_db

JUNIT = b"""<?xml version="1.0"?>
<testsuites><testsuite name="unit">
<testcase classname="scoring" name="test_a"/>
<testcase classname="scoring" name="test_b"><failure message="boom">trace</failure></testcase>
<testcase classname="scoring" name="test_c"><skipped/></testcase>
</testsuite></testsuites>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<testsuite name="x"><testcase classname="c" name="&xxe;"/></testsuite>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuite name="x"><testcase classname="c" name="&lol4;"/></testsuite>"""


def test_a_parsed_report_moves_pending_processing_parsed(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "junit", JUNIT))
    assert (evidence.state, evidence.progress, evidence.attempts) == ("parsed", 100, 1)
    assert evidence.processed_at is not None
    actions = list(
        AuditEvent.objects.filter(object_id=str(evidence.pk), object_type="evidence.evidence").values_list(
            "action", flat=True
        )
    )
    assert actions == ["evidence.uploaded", "evidence.processing", "evidence.parsed"]


def test_a_broken_report_fails_with_the_line_at_fault(upload, artifact):
    evidence = evidence_of(
        upload(DIGEST, "junit", b'<?xml version="1.0"?>\n<testsuite>\n<testcase name="a">\n</testsuite>')
    )
    assert evidence.state == "failed"
    assert "line 4" in evidence.error
    assert not TestResult.objects.exists()
    assert AuditEvent.objects.filter(action="evidence.failed").count() == 1


def test_a_json_report_error_names_the_path(upload, artifact):
    evidence = evidence_of(
        upload(
            DIGEST,
            "openvex",
            b'{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {"name": "CVE-1"}, "status": "maybe"}]}',  # noqa: E501
        )
    )
    assert evidence.state == "failed" and "statements[0].status" in evidence.error


def test_xxe_is_refused_and_no_file_is_read(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "junit", XXE))
    assert evidence.state == "failed" and "entit" in evidence.error
    assert not TestResult.objects.filter(name__contains="root:").exists()


def test_billion_laughs_is_refused(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "junit", BILLION_LAUGHS))
    assert evidence.state == "failed" and "entit" in evidence.error


def test_cobertura_with_an_external_dtd_is_parsed_without_fetching_it(upload, artifact):
    from tests.samples import sample_bytes

    evidence = evidence_of(upload(DIGEST, "cobertura", sample_bytes("coverage/cobertura-istanbul-flat.xml")))
    assert evidence.state == "parsed", evidence.error


def test_rerunning_the_task_makes_exactly_one_set_of_rows(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "junit", JUNIT))
    assert TestResult.objects.filter(evidence=evidence).count() == 3
    # A redelivered message for a finished evidence changes nothing.
    evidence_process(evidence_id=evidence.pk)
    assert TestResult.objects.filter(evidence=evidence).count() == 3
    # A forced re-run replaces the rows, it never adds to them.
    evidence_process(evidence_id=evidence.pk, reprocess=True)
    evidence_process(evidence_id=evidence.pk, reprocess=True)
    assert TestResult.objects.filter(evidence=evidence).count() == 3
    assert Evidence.objects.get(pk=evidence.pk).attempts == 3


def test_a_worker_killed_mid_task_is_finished_by_the_redelivery(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "junit", JUNIT))
    # What a killed worker leaves: the claim committed ("processing"), the fact transaction never did.
    Evidence.objects.filter(pk=evidence.pk).update(state="processing", progress=20)
    evidence_process(evidence_id=evidence.pk)
    evidence.refresh_from_db()
    assert (evidence.state, evidence.progress) == ("parsed", 100)
    assert TestResult.objects.filter(evidence=evidence).count() == 3


def test_a_crash_in_the_final_write_leaves_the_previous_result_intact(upload, artifact, monkeypatch):
    from evidence import processing

    evidence = evidence_of(upload(DIGEST, "junit", JUNIT))

    def explode(*args, **kwargs):
        raise OSError("worker lost its disk")

    monkeypatch.setattr(processing.audit, "record", explode)
    with pytest.raises(OSError):
        evidence_process(evidence_id=evidence.pk, reprocess=True)
    assert TestResult.objects.filter(evidence=evidence).count() == 3  # the old complete set, not half a new one


def test_the_task_is_acks_late_and_retries_transient_errors(ci_account, artifact):
    from django.core.files.storage import default_storage

    from evidence import services
    from evidence.tasks import process_evidence

    assert process_evidence.acks_late is True
    evidence, _ = services.evidence_receive_bytes(
        artifact=artifact, actor=ci_account, evidence_type="junit", data=JUNIT
    )
    default_storage.delete(evidence.storage_name)  # reading it raises OSError, a transient error, every time

    assert process_evidence.apply(args=(evidence.pk,)).get() == "failed"  # eager: the retries run at once
    evidence.refresh_from_db()
    assert evidence.attempts == process_evidence.max_retries + 1
    assert evidence.error.startswith(f"gave up after {process_evidence.max_retries} retries")


def test_reprocess_request_is_audited_and_refused_while_processing(upload, artifact, release_manager):
    from common.errors import InvalidState
    from evidence import services

    evidence = evidence_of(upload(DIGEST, "junit", JUNIT))
    Evidence.objects.filter(pk=evidence.pk).update(state="processing")
    with pytest.raises(InvalidState, match="processing right now"):
        services.evidence_reprocess(evidence=evidence, actor=release_manager)
