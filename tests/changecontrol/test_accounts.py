"""Accounts: sign-in auditing, lockout with an alert to administrators, idle timeout, audited role changes."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from changecontrol import roles
from changecontrol.auth import account_unlock
from changecontrol.models import AuditEvent, Role, User
from changecontrol.roles import roles_of
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def sign_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def test_sign_in_and_sign_out(author):
    client = Client()
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_failed_sign_in_is_audited(author):
    response = sign_in(Client(), "alice", "not my password")
    assert response.status_code == 200  # the form again, with an error
    event = AuditEvent.objects.get(action="login.failed")
    assert event.actor == author and event.after == {"failed_attempts": 1} and event.client_address == "127.0.0.1"


def test_failed_sign_in_for_an_unknown_username_is_audited_without_an_actor(db):
    sign_in(Client(), "mallory", "anything")
    event = AuditEvent.objects.get(action="login.failed")
    assert event.actor is None and "mallory" in event.reason


def test_lockout_after_the_threshold_alerts_administrators(
    author, admin_user, settings, django_capture_on_commit_callbacks
):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 3
    settings.CUSTODY_LOCKOUT_CLIENTS = 1  # this installation locks on failures from a single client
    settings.ADMINS = [("Security desk", "security-desk@example.test")]
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            sign_in(client, "alice", "wrong")
    author.refresh_from_db()
    assert author.locked_at is not None and author.failed_login_count == 3
    locked = AuditEvent.objects.get(action="account.locked")
    assert locked.reason == "3 failed password attempts"
    recipients = {address for message in mail.outbox for address in message.to}
    assert {"security-desk@example.test", "ada@example.test"} <= recipients
    assert mail.outbox and all(message.subject.endswith("Custody account locked: alice") for message in mail.outbox)


def test_lockout_raises_an_alert_on_each_product_the_person_works_on(author, product, settings):
    from alerts.models import Alert

    settings.CUSTODY_LOCKOUT_THRESHOLD = 2
    settings.CUSTODY_LOCKOUT_CLIENTS = 1
    for address in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):  # a third failure while locked raises nothing new
        sign_in(Client(REMOTE_ADDR=address), "alice", "wrong")
    alert = Alert.objects.get(event_kind="lockout")
    assert alert.product == product and alert.body["user"] == "alice" and alert.body["failed_attempts"] == 2


def test_locked_user_cannot_sign_in_even_with_the_right_password(author, settings):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 2
    settings.CUSTODY_LOCKOUT_CLIENTS = 2
    sign_in(Client(REMOTE_ADDR="10.0.0.1"), "alice", "wrong")
    sign_in(Client(REMOTE_ADDR="10.0.0.2"), "alice", "wrong")
    client = Client(REMOTE_ADDR="10.0.0.3")
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="login.refused_locked", actor=author).exists()


def test_lockout_ends_after_the_configured_minutes(author, settings):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 1
    settings.CUSTODY_LOCKOUT_CLIENTS = 1
    settings.CUSTODY_LOCKOUT_MINUTES = 30
    sign_in(Client(), "alice", "wrong")
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        client = Client()
        assert sign_in(client, "alice", PASSWORD).status_code == 302
    author.refresh_from_db()
    assert author.locked_at is None and author.failed_login_count == 0


def test_administrator_unlock_is_audited(author, admin_user, settings):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 1
    settings.CUSTODY_LOCKOUT_CLIENTS = 1
    settings.CUSTODY_LOCKOUT_MINUTES = 0
    sign_in(Client(REMOTE_ADDR="10.0.0.1"), "alice", "wrong")
    account_unlock(actor=admin_user, user=author, reason="Confirmed by phone that alice mistyped")
    author.refresh_from_db()
    assert author.locked_at is None
    assert sign_in(Client(), "alice", PASSWORD).status_code == 302
    event = AuditEvent.objects.get(action="account.unlocked")
    assert event.actor == admin_user and event.reason.startswith("Confirmed by phone")


def test_idle_session_is_signed_out(author, settings):
    settings.CUSTODY_IDLE_TIMEOUT_MINUTES = 15
    client = Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        sign_in(client, "alice", PASSWORD)
        assert client.get("/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        assert client.get("/").status_code == 200  # activity keeps the session alive
    with time_machine.travel(start + timedelta(minutes=26), tick=False):
        response = client.get("/")
        assert response.status_code == 302 and response["Location"].startswith(LOGIN)
        assert client.get("/").status_code == 302  # and it stays signed out


def test_idle_api_session_is_refused(author, settings):
    settings.CUSTODY_IDLE_TIMEOUT_MINUTES = 15
    client = Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        sign_in(client, "alice", PASSWORD)
        assert client.get("/api/v1/products").status_code == 200
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        assert client.get("/api/v1/products").status_code == 401


def test_role_grant_and_revocation_are_audited(product, admin_user, outsider):
    roles.role_grant(actor=admin_user, user=outsider, product=product, role=Role.AUDITOR)
    assert roles_of(User.objects.get(pk=outsider.pk), product) == {"auditor"}
    roles.role_revoke(actor=admin_user, user=outsider, product=product, role=Role.AUDITOR, reason="engagement over")
    assert roles_of(User.objects.get(pk=outsider.pk), product) == set()
    events = list(AuditEvent.objects.filter(object_human_id="rsd:olga").order_by("id"))
    assert [(e.action, e.actor, e.reason) for e in events] == [
        ("role.granted", admin_user, ""),
        ("role.revoked", admin_user, "engagement over"),
    ]
    assert events[0].after == {"user": "olga", "role": "auditor"} and events[0].product_key == "rsd"


def test_granting_an_unknown_role_is_refused(product, admin_user, outsider):
    from common.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="unknown role 'wizard'"):
        roles.role_grant(actor=admin_user, user=outsider, product=product, role="wizard")
    assert not AuditEvent.objects.filter(object_human_id="rsd:olga").exists()
