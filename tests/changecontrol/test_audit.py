"""The audit trail: hash chain, the database refusing rewrites, verification, signed checkpoints, export."""

import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from changecontrol import audit, roles, services, verification
from changecontrol.models import AuditCheckpoint, AuditEvent, checkpoint_statement
from common.keys import keyring
from common.signing import Keyring, generate_private_key_pem
from tests.conftest import HIGH_RISK, LOW_RISK, open_change_request, sign_change_request

pytestmark = pytest.mark.django_db


def sign(change_request, signer, meaning="approved", comment="Evidence reviewed."):
    return sign_change_request(change_request, signer, meaning=meaning, comment=comment)


@pytest.fixture
def busy_trail(product, cast):
    """Many services' worth of events: CRs in several states, signatures, a refusal, a failed password, roles."""
    rory, quinn, sasha = cast["rory"], cast["quinn"], cast["sasha"]
    for _ in range(3):
        open_change_request(product=product, requester=rory, answers=LOW_RISK)
    high = open_change_request(product=product, requester=rory, answers=HIGH_RISK)
    sign(high, quinn)
    sign(high, sasha)
    services.change_request_mark_implemented(change_request=high, actor=rory)
    with pytest.raises(Exception):  # noqa: B017 - the refusal's type is tested elsewhere; here only its event
        sign(open_change_request(product=product, requester=rory), rory)
    with pytest.raises(Exception):  # noqa: B017
        sign_change_request(high, quinn, password="wrong")
    roles.role_revoke(actor=None, user=cast["sam"], product=product, role="sre", reason="moved team")
    return high


def edit_event(event_id: int, **changes) -> None:
    """Rewrite an event the way an attacker with table-owner rights would: triggers off, UPDATE, triggers on."""
    assignments = ", ".join(f"{column} = %s" for column in changes)
    with connection.cursor() as cursor:
        # Deferred foreign-key checks of this test's inserts must run first, or PostgreSQL refuses the ALTER.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE changecontrol_auditevent DISABLE TRIGGER custody_audit_no_update_delete")
        cursor.execute(
            f"UPDATE changecontrol_auditevent SET {assignments} WHERE id = %s", [*changes.values(), event_id]
        )  # noqa: S608
        cursor.execute("ALTER TABLE changecontrol_auditevent ENABLE TRIGGER custody_audit_no_update_delete")


def test_chain_is_intact_after_many_services(busy_trail):
    audit.checkpoint_create()
    report = verification.verify()
    assert report.intact, (report.findings, report.uncovered)
    assert report.events == AuditEvent.objects.count() > 30
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "change_request.auto_approved",
        "signature.approved",
        "change_request.implemented",
        "signature.refused",
        "signature.failed",
        "role.revoked",
    } <= actions


def test_each_event_links_to_the_one_before(busy_trail):
    rows = list(AuditEvent.objects.order_by("id").values_list("id", "previous_hash", "hash"))
    assert rows[0][0] == 1 and rows[0][1] == audit.GENESIS_HASH
    for (_, _, previous), (event_id, link, _) in zip(rows, rows[1:], strict=False):
        assert link == previous, f"event #{event_id} does not link"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE changecontrol_auditevent SET reason = 'rewritten'",
        "DELETE FROM changecontrol_auditevent WHERE id = 1",
        "TRUNCATE changecontrol_auditevent CASCADE",
    ],
    ids=["update", "delete", "truncate"],
)
def test_postgresql_refuses_to_rewrite_the_audit_table(product, statement):
    assert connection.vendor == "postgresql"
    count = AuditEvent.objects.count()
    with connection.cursor() as cursor:
        # Run this test's deferred foreign-key checks now, so PostgreSQL reaches the trigger on TRUNCATE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    # psycopg raises InsufficientPrivilege through Django's wrapper; the message is what matters.
    with pytest.raises(Exception) as refused, transaction.atomic(), connection.cursor() as cursor:  # noqa: B017
        cursor.execute(statement)
    assert "append-only" in str(refused.value)
    assert AuditEvent.objects.count() == count
    assert not AuditEvent.objects.filter(reason="rewritten").exists()


def test_verify_command_names_the_edited_event_and_exits_1(busy_trail):
    victim = AuditEvent.objects.filter(action="signature.approved").order_by("id").first()
    edit_event(victim.pk, reason="signed under duress")
    with pytest.raises(CommandError) as broken:
        call_command("verify_audit", stdout=io.StringIO())
    assert broken.value.returncode == 1
    assert f"event #{victim.pk}" in str(broken.value) and "signature.approved" in str(broken.value)


def test_an_edited_link_is_named_even_when_the_hash_is_recomputed(busy_trail):
    victim = AuditEvent.objects.order_by("id")[10]
    forged = AuditEvent.objects.get(pk=victim.pk)
    forged.reason = "quietly changed"
    edit_event(victim.pk, reason=forged.reason, hash=audit.compute_hash(forged))
    report = verification.verify()
    # The rewritten event hashes correctly; its successor's link betrays it.
    assert str(report.findings[0]) == f"event #{victim.pk + 1}: does not link to the event before it"


def test_a_deleted_event_is_named_as_missing(busy_trail):
    with connection.cursor() as cursor:
        # Deferred foreign-key checks of this test's inserts must run first, or PostgreSQL refuses the ALTER.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE changecontrol_auditevent DISABLE TRIGGER custody_audit_no_update_delete")
        cursor.execute("DELETE FROM changecontrol_auditevent WHERE id = 5")
        cursor.execute("ALTER TABLE changecontrol_auditevent ENABLE TRIGGER custody_audit_no_update_delete")
    report = verification.verify()
    assert str(report.findings[0]) == "event #5: is missing (the next present is #6)"


def test_checkpoint_is_signed_by_custody_and_verifies(busy_trail):
    checkpoint = audit.checkpoint_create()
    head = AuditEvent.objects.get(pk=checkpoint.event_id)
    assert checkpoint.event_hash == head.hash and checkpoint.key_id == keyring().key_id
    assert keyring().verify(checkpoint.statement(), checkpoint.signed_blob())
    # The checkpoint itself is an audited event after the head it signed.
    assert AuditEvent.objects.order_by("-id").first().action == "audit.checkpoint_signed"
    assert verification.verify().intact


def test_a_forged_checkpoint_is_detected(busy_trail):
    head = AuditEvent.objects.order_by("-id").first()
    impostor = Keyring(active_private_key_pem=generate_private_key_pem())
    from django.utils import timezone

    created_at = timezone.now()
    forged = impostor.sign(checkpoint_statement(event_id=head.pk, event_hash=head.hash, created_at=created_at))
    checkpoint = AuditCheckpoint.objects.create(
        event=head,
        event_hash=head.hash,
        event_count=head.pk,
        created_at=created_at,
        key_id=keyring().key_id,
        signature=forged.signature_b64,
    )
    report = verification.verify()
    assert f"checkpoint {checkpoint.pk}: carries a signature Custody did not make" in map(str, report.findings)


def test_a_rewritten_chain_no_longer_matches_its_checkpoint(busy_trail):
    checkpoint = audit.checkpoint_create()
    # An attacker rewrites the checkpointed event and re-hashes every event after it: the chain is
    # self-consistent again, but Custody's signed checkpoint still names the old hash.
    previous_hash = None
    for event in AuditEvent.objects.filter(pk__gte=checkpoint.event_id).order_by("id"):
        if event.pk == checkpoint.event_id:
            event.reason = "history rewritten"
        else:
            event.previous_hash = previous_hash
        event.hash = audit.compute_hash(event)
        edit_event(event.pk, reason=event.reason, previous_hash=event.previous_hash, hash=event.hash)
        previous_hash = event.hash
    report = verification.verify()
    assert f"checkpoint {checkpoint.pk}: event #{checkpoint.event_id} no longer matches this signed checkpoint" in map(
        str, report.findings
    )


def test_audit_export_as_json_for_an_auditor(api, busy_trail, auditor):
    response = api(auditor).get("/api/v1/audit-events", {"product": "rsd", "object": busy_trail.human_id})
    assert response.status_code == 200
    rows = response.json()
    assert rows and {row["object_human_id"] for row in rows} == {busy_trail.human_id}
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)
    implemented = next(row for row in rows if row["action"] == "change_request.implemented")
    assert implemented["actor"] == "Rory Release-Manager" and implemented["after"] == {"state": "implemented"}
    assert len(implemented["hash"]) == 64


def test_audit_export_as_csv_neutralises_formulas(api, product, cast, auditor):
    open_change_request(product=product, requester=cast["rory"], title='=HYPERLINK("http://evil")', answers=LOW_RISK)
    response = api(auditor).get("/api/v1/audit-events", {"product": "rsd", "export": "csv", "format": "csv"})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows and set(rows[0]) >= {"id", "at", "actor", "action", "object_human_id", "before", "after", "hash"}
    assert all(not cell.startswith("=") for row in rows for cell in row.values() if cell)


def test_audit_events_of_other_products_are_invisible(api, product, other_product_token, outsider):
    assert api(outsider).get("/api/v1/audit-events").json() == []
    assert api(token=other_product_token).get("/api/v1/audit-events", {"product": "rsd"}).json() == []


def test_audit_csv_writer_neutralises_formulas_and_encodes_json(product, cast):
    from changecontrol.api import AuditEventOutput, audit_csv_response

    change_request = open_change_request(
        product=product, requester=cast["rory"], title="=cmd|' /C calc'!A0", answers=LOW_RISK
    )
    events = AuditEvent.objects.filter(object_type="changecontrol.changerequest", object_id=str(change_request.pk))
    rows = AuditEventOutput(events.order_by("id"), many=True).data
    response = audit_csv_response(rows)
    parsed = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Disposition"] == 'attachment; filename="custody-audit-trail.csv"'
    assert [row["action"] for row in parsed][:2] == ["change_request.created", "change_request.submitted"]
    assert parsed[0]["object_human_id"] == change_request.human_id
    assert '"title": "=cmd' in parsed[0]["after"]  # JSON text, which starts with "{", never a formula
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in parsed for cell in row.values() if cell)
