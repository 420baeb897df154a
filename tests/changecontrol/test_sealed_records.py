"""Sealed records (DESIGN §6): the database refuses rewrites of regulated records except their legal transitions, and
whatever its owner rewrites anyway — triggers disabled — `verify_audit` names: record type, human ID and field.

Every tampering here is done as the issue found it possible, by the database owner (the test connection owns every
table, as the migrating role does in production).
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from approvals import releases, services
from changecontrol import audit, verification
from changecontrol.models import AuditCheckpoint, AuditEvent, Signature
from evidence import services as evidence_services
from evidence.models import Evidence, TestResult
from evidence.processing import evidence_process
from runtime.models import Deployment
from tests.builders import add_evidence, make_artifact, make_build, triggers_off
from tests.conftest import HIGH_RISK, LOW_RISK, open_change_request, sign_change_request
from tests.runtime.helpers import deploy

pytestmark = pytest.mark.django_db

JUNIT = b"""<?xml version="1.0"?>
<testsuites><testsuite name="unit">
<testcase classname="scoring" name="test_range"/>
<testcase classname="scoring" name="test_threshold"><failure message="0.41 != 0.42">trace</failure></testcase>
</testsuite></testsuites>"""


@pytest.fixture
def trail(api, ci_token, product, cast, ci_account):
    """A product's whole spine written through the services: evidence parsed, a signed change request, a frozen
    release with a baseline, promotions and their decisions, an (unauthorised) deployment, and a checkpoint."""
    artifact = make_artifact(make_build(product, registered_by=ci_account))
    evidence, _ = evidence_services.evidence_receive_bytes(
        artifact=artifact, actor=ci_account, evidence_type="junit", data=JUNIT, name="pytest.xml"
    )
    evidence = evidence_process(evidence_id=evidence.pk)
    signed = open_change_request(product=product, requester=cast["rory"], answers=HIGH_RISK)
    for reviewer in (cast["quinn"], cast["sasha"]):
        sign_change_request(signed, reviewer, comment="reviewed")
    release = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.3.0",
        artifact_digests=[artifact.digest],
        change_request_ids=[open_change_request(product=product, requester=cast["paula"], answers=LOW_RISK).human_id],
    )
    # Blocked (a failing test; staging never passed), yet every decision and the deployment are records.
    services.promotion_request(release=release, environment_key="production", actor=cast["rory"])
    deployment_id = deploy(api, ci_token, artifact.digest).json()["id"]
    audit.checkpoint_create()
    report = verification.verify()
    assert report.intact, (report.findings, report.uncovered)
    return {
        "evidence": evidence,
        "signature": Signature.objects.filter(subject_id=signed.pk).order_by("id").first(),
        "other_change_request": open_change_request(product=product, requester=cast["rory"], answers=LOW_RISK),
        "deployment": Deployment.objects.get(pk=int(deployment_id.removeprefix("DEP-"))),
        "release": release,
    }


def refused(statement: str, params=()) -> str:
    """Run `statement` as the owner with the triggers on; the refusal's message (the statement must be refused)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # this test's deferred checks first
    with pytest.raises(Exception) as refusal, transaction.atomic(), connection.cursor() as cursor:  # noqa: B017
        cursor.execute(statement, params)
    return str(refusal.value)


def verify_audit(*args: str) -> tuple[int, str]:
    """Run the command as an operator would: (exit code, everything it printed)."""
    out = io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


# ---------------------------------------------------------------- the database refuses


@pytest.mark.parametrize(
    ("statement", "rule"),
    [
        ("DELETE FROM changecontrol_auditcheckpoint", "a signed checkpoint is never changed or removed"),
        ("UPDATE changecontrol_signature SET subject_id = subject_id + 1", "may change only invalidated_at"),
        ("UPDATE approvals_deployment SET authorised = true", "a deployment is a fact"),
        ("UPDATE evidence_evidence SET verdict = 'signed'", "evidence changes only by the steps of processing it"),
        ("UPDATE approvals_decision SET decision = 'allowed'", "a decision is what was decided"),
        ("DELETE FROM approvals_decision", "a decision is what was decided"),
        ("UPDATE approvals_release SET manifest_sha256 = repeat('0', 64)", "a frozen release is its signed manifest"),
        ("DELETE FROM approvals_release_artifacts", "a frozen release is its signed manifest"),
        ("UPDATE evidence_testresult SET status = 'passed'", "may change only nothing"),
        ("DELETE FROM evidence_testresult", "replaced only while their evidence is processed again"),
        ("UPDATE changecontrol_policyversion SET source = 'name: lax'", "may change only state, activated_at"),
        ("TRUNCATE changecontrol_signature CASCADE", "TRUNCATE is refused"),
        ("TRUNCATE approvals_decision CASCADE", "TRUNCATE is refused"),
    ],
    ids=lambda value: value[:40],
)
def test_the_database_refuses_to_rewrite_a_sealed_record(trail, statement, rule):
    message = refused(statement)
    assert "is sealed" in message and rule in message


def test_a_signature_is_invalidated_once_with_a_reason_and_nothing_else(trail):
    signature = trail["signature"]
    assert "may not make this change" in refused(
        "UPDATE changecontrol_signature SET invalidated_at = now(), invalidated_reason = '' WHERE id = %s",
        [signature.pk],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE changecontrol_signature SET invalidated_at = now(), invalidated_reason = 'edited' WHERE id = %s",
            [signature.pk],
        )
    assert "may not make this change" in refused(
        "UPDATE changecontrol_signature SET invalidated_at = NULL, invalidated_reason = '' WHERE id = %s",
        [signature.pk],
    )


def test_a_release_changes_freely_until_it_freezes(product, cast, trail, ci_account):
    draft = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.4.0",
        artifact_digests=[trail["release"].artifacts.get().digest],
        change_request_ids=[],
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE approvals_release SET notes = 'draft notes' WHERE id = %s", [draft.pk])
        cursor.execute("DELETE FROM approvals_release_artifacts WHERE release_id = %s", [draft.pk])
    assert "is sealed" in refused("UPDATE approvals_release SET notes = 'changed' WHERE id = %s", [trail["release"].pk])


# ---------------------------------------------------------------- what the owner rewrites anyway is named


def assert_named(record, type_name: str, field: str) -> None:
    """verify_audit exits 1 naming the record (human ID and type) and the field that no longer matches its seal."""
    code, printed = verify_audit()
    assert code == 1
    assert f"{record.human_id}: ({type_name}) no longer matches its seal" in printed
    assert f"changed {field}" in printed


def test_a_deleted_checkpoint_is_named(trail):
    checkpoint = AuditCheckpoint.objects.get()
    with triggers_off("changecontrol_auditcheckpoint") as cursor:
        cursor.execute("DELETE FROM changecontrol_auditcheckpoint")
    code, printed = verify_audit()
    assert code == 1
    assert (
        f"checkpoint {checkpoint.pk}: signed by event #" in printed and "missing from the checkpoint table" in printed
    )


def test_a_signature_moved_to_another_record_is_named(trail):
    signature, other = trail["signature"], trail["other_change_request"]
    with triggers_off("changecontrol_signature") as cursor:
        cursor.execute("UPDATE changecontrol_signature SET subject_id = %s WHERE id = %s", [other.pk, signature.pk])
    assert_named(signature, "changecontrol.signature", "subject_id")


def test_an_unauthorised_deployment_flipped_to_authorised_is_named(trail):
    deployment = trail["deployment"]
    assert deployment.authorised is False
    with triggers_off("approvals_deployment") as cursor:
        cursor.execute("UPDATE approvals_deployment SET authorised = true WHERE id = %s", [deployment.pk])
    assert_named(deployment, "approvals.deployment", "authorised")


def test_an_unsigned_verdict_turned_signed_is_named_even_through_legal_steps(trail):
    evidence = trail["evidence"]
    assert evidence.verdict == "unsigned"
    # Through the steps the trigger allows (claimed, then finished) the row can say anything: the seal cannot.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE evidence_evidence SET state = 'processing' WHERE id = %s", [evidence.pk])
        cursor.execute("UPDATE evidence_evidence SET state = 'parsed', verdict = 'signed' WHERE id = %s", [evidence.pk])
    assert_named(evidence, "evidence.evidence", "verdict")


def test_a_rewritten_test_result_is_named_on_its_evidence(trail):
    evidence = trail["evidence"]
    with triggers_off("evidence_testresult") as cursor:
        cursor.execute(
            "UPDATE evidence_testresult SET status = 'passed', message = '' WHERE evidence_id = %s AND status = 'failed'",
            [evidence.pk],
        )
    assert not TestResult.objects.filter(evidence=evidence, status="failed").exists()
    assert_named(evidence, "evidence.evidence", "test_results")


def test_a_deleted_decision_and_an_inserted_signature_are_named(trail, cast):
    decision = trail["deployment"].decision
    with triggers_off("approvals_decision", "approvals_deployment") as cursor:
        cursor.execute("UPDATE approvals_deployment SET decision_id = NULL WHERE decision_id = %s", [decision.pk])
        cursor.execute("DELETE FROM approvals_decision WHERE id = %s", [decision.pk])
    forged = Signature.objects.create(
        subject_type="changecontrol.changerequest",
        subject_id=trail["other_change_request"].pk,
        subject_human_id=trail["other_change_request"].human_id,
        product=trail["release"].product,
        signer=cast["quinn"],
        printed_name="Quinn Quality",
        meaning="approved",
        content={},
        content_sha256="0" * 64,
    )
    report = verification.verify()
    findings = [str(finding) for finding in report.findings]
    assert any(
        f"approvals.decision #{decision.pk}: sealed by event #" in f and "no longer exists" in f for f in findings
    )
    assert any(f.startswith(f"{forged.human_id}: (changecontrol.signature) carries no seal") for f in findings)


def test_a_chain_rewritten_after_the_last_checkpoint_is_not_called_intact(trail, cast):
    # Events after the checkpoint are not vouched for: verify says so (exit 2) until a checkpoint covers them.
    open_change_request(product=trail["release"].product, requester=cast["rory"], answers=LOW_RISK)
    code, printed = verify_audit()
    assert code == 2 and "are not covered by a signed checkpoint yet" in printed
    audit.checkpoint_create()
    assert verify_audit()[0] == 0


def test_without_any_checkpoint_nothing_is_called_intact(product, cast):
    open_change_request(product=product, requester=cast["rory"], answers=LOW_RISK)
    code, printed = verify_audit()
    assert code == 2 and "no valid signed checkpoint exists" in printed


def test_every_checkpoint_is_checked_not_only_the_latest(trail):
    first = AuditCheckpoint.objects.get()
    audit.checkpoint_create()
    with triggers_off("changecontrol_auditcheckpoint") as cursor:
        cursor.execute("UPDATE changecontrol_auditcheckpoint SET signature = %s WHERE id = %s", ["AAAA", first.pk])
    code, printed = verify_audit()
    assert code == 1 and f"checkpoint {first.pk}: carries a signature Custody did not make" in printed


# ---------------------------------------------------------------- records written before seals


def test_records_written_before_seals_are_named_until_sealed_once(trail, ci_account, product):
    legacy = add_evidence(make_artifact(make_build(product, registered_by=ci_account)), "junit")
    report = verification.verify()
    assert any(str(f).startswith(f"{legacy.human_id}: (evidence.evidence) carries no seal") for f in report.findings)
    out = io.StringIO()
    call_command("seal_records", stdout=out)
    assert "Sealed 1 record(s)" in out.getvalue()
    audit.checkpoint_create()
    assert verify_audit()[0] == 0
    assert AuditEvent.objects.filter(action="records.sealed").count() == 1


# ---------------------------------------------------------------- incremental, nightly, alerts


def test_the_nightly_run_verifies_only_what_is_new_and_alerts_on_tampering(trail, product, cast, other_product):
    from alerts.models import Alert
    from changecontrol.tasks import audit_verify

    assert audit_verify(incremental=False) is True
    full = AuditEvent.objects.filter(action="audit.verified").latest("id").after
    assert full["kind"] == "full" and full["from_event"] == 1
    open_change_request(product=product, requester=cast["rory"], answers=LOW_RISK)
    assert audit_verify(incremental=True) is True
    nightly = AuditEvent.objects.filter(action="audit.verified").latest("id").after
    assert nightly["kind"] == "incremental" and nightly["from_event"] == full["through_event"] + 1
    assert nightly["events"] < full["events"]
    # A record sealed since the last run is rewritten: the next nightly run names it and every product hears it.
    signed = open_change_request(product=product, requester=cast["rory"], answers=HIGH_RISK)
    sign_change_request(signed, cast["quinn"])
    new_signature = Signature.objects.filter(subject_id=signed.pk).get()
    with triggers_off("changecontrol_signature") as cursor:
        cursor.execute("UPDATE changecontrol_signature SET comment = 'all fine' WHERE id = %s", [new_signature.pk])
    assert audit_verify(incremental=True) is False
    failed = AuditEvent.objects.filter(action="audit.verification_failed").latest("id").after
    assert any(new_signature.human_id in finding and "changed comment" in finding for finding in failed["findings"])
    alerts = Alert.objects.filter(event_kind="audit_integrity")
    assert {alert.product.key for alert in alerts} == {product.key, other_product.key}


def test_an_incremental_run_whose_base_is_gone_verifies_everything(trail):
    from changecontrol.tasks import audit_verify

    assert audit_verify(incremental=False) is True
    with triggers_off("changecontrol_auditcheckpoint") as cursor:
        cursor.execute("DELETE FROM changecontrol_auditcheckpoint")
    report = verification.verify(incremental=True)
    assert report.kind == "full" and report.tampered
    assert any("the last intact verification ended here, and it is gone" in str(f) for f in report.findings)


def test_evidence_processed_again_replaces_its_facts_and_stays_sealed(trail, cast):
    evidence = trail["evidence"]
    evidence_services.evidence_reprocess(evidence=evidence, actor=cast["rory"])
    evidence_process(evidence_id=evidence.pk, reprocess=True)
    assert Evidence.objects.get(pk=evidence.pk).state == "parsed"
    audit.checkpoint_create()
    assert verify_audit()[0] == 0
