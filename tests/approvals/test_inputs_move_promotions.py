"""Reads never write: the status answer only reads, and what moves a promotion is the input that completes it.

A promotion waiting on a report is approved when that report finishes processing, on behalf of whoever sent it; one
waiting on a change request is approved when a reviewer's signature approves the change request. Both happen after
the input's transaction commits (a task queued on commit), as in production.
"""

from __future__ import annotations

from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import releases, services
from approvals import status as approval_status
from approvals.models import Decision, Promotion
from changecontrol.models import AuditEvent
from tests.builders import (
    add_evidence,
    add_full_evidence,
    add_provenance,
    add_sbom,
    add_scan,
    make_artifact,
    make_build,
    pass_through,
)
from tests.conftest import LOW_RISK, MEDIUM_RISK, open_change_request, sign_change_request

JUNIT_PASSING = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="1" failures="0" errors="0" skipped="0" time="0.1">
<testcase classname="tests.test_score" name="test_score_in_range" time="0.1"/>
</testsuite></testsuites>
"""


def _artifact_without_tests(product, ci_account):
    artifact = make_artifact(make_build(product, registered_by=ci_account))
    add_evidence(artifact, "cosign", verdict="signed", name="signature")
    add_provenance(artifact)
    add_sbom(artifact)
    add_scan(artifact)
    return artifact


def test_the_status_answer_never_writes(api, ci_token, production_promotion, artifact):
    cache.clear()
    approval_status._local_answers.clear()
    events, decisions = AuditEvent.objects.count(), Decision.objects.count()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):  # a cold answer, then a cached one
            response = api(token=ci_token).get(
                "/api/v1/status", {"artifact": artifact.digest, "environment": "production"}
            )
            assert response.status_code == 200, response.json()
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "TRUNCATE", "MERGE"))
        # Authentication's own bookkeeping, at most once a minute: when the token was last used (access reviews).
        and not q["sql"].startswith('UPDATE "changecontrol_apitoken" SET "last_used_at"')
    ]
    assert writes == []
    assert (AuditEvent.objects.count(), Decision.objects.count()) == (events, decisions)


def test_a_report_that_completes_a_promotion_approves_it_on_behalf_of_its_sender(
    api, ci_token, product, cast, ci_account, policy, django_capture_on_commit_callbacks
):
    artifact = _artifact_without_tests(product, ci_account)
    change = open_change_request(product=product, requester=cast["paula"], answers=LOW_RISK)  # approved at once
    release = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="8.0.0",
        artifact_digests=[artifact.digest],
        change_request_ids=[change.human_id],
    )
    promotion = services.promotion_request(release=release, environment_key="integration", actor=cast["rory"])
    assert promotion.state == Promotion.State.AWAITING_APPROVAL  # the tests gate has no report yet
    with django_capture_on_commit_callbacks(execute=True):
        response = api(token=ci_token).post(
            f"/api/v1/artifacts/{artifact.digest}/evidence",
            {"type": "junit", "file": SimpleUploadedFile("junit.xml", JUNIT_PASSING)},
            format="multipart",
        )
    assert response.status_code == 202, response.json()
    promotion.refresh_from_db()
    assert promotion.state == Promotion.State.APPROVED
    approved = AuditEvent.objects.get(action="promotion.approved", object_human_id=promotion.human_id)
    assert approved.actor == ci_account  # the pipeline that sent the report, not "the system"
    stored = Decision.objects.filter(artifact=artifact, environment__key="integration").order_by("id")
    assert list(stored.values_list("decision", flat=True)) == ["blocked", "allowed"]


def test_a_change_request_approval_completes_the_promotion_waiting_on_it(
    product, cast, ci_account, policy, django_capture_on_commit_callbacks
):
    artifact = make_artifact(make_build(product, registered_by=ci_account))
    add_full_evidence(artifact)
    change = open_change_request(product=product, requester=cast["paula"], answers=MEDIUM_RISK)  # needs quality
    release = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="8.1.0",
        artifact_digests=[artifact.digest],
        change_request_ids=[change.human_id],
    )
    pass_through(release, actor=cast["rory"], environments=("integration",))
    staging = services.promotion_request(release=release, environment_key="staging", actor=cast["rory"])
    assert staging.state == Promotion.State.AWAITING_APPROVAL  # its change request is not approved yet
    with django_capture_on_commit_callbacks(execute=True):
        sign_change_request(change, cast["quinn"])
    staging.refresh_from_db()
    assert staging.state == Promotion.State.APPROVED
    approved = AuditEvent.objects.get(action="promotion.approved", object_human_id=staging.human_id)
    assert approved.actor == cast["quinn"]
