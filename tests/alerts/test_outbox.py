"""The alert outbox: raising in the caller's transaction, signed webhooks, Slack bodies, e-mail, backoff, sweep."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from alerts import services, tasks
from alerts.models import Alert, AlertSubscription, Delivery, DeliveryAttempt
from changecontrol.models import AuditEvent
from common.errors import ValidationFailed

pytestmark = pytest.mark.django_db

DRIFT_BODY = {"environment": "production", "digest": "sha256:" + "ab" * 32, "finding": "unapproved"}


def raise_drift(product, dedupe_key: str = "") -> Alert:
    return services.alert_raise(
        product=product,
        event_kind="drift",
        subject="sha256:abab… runs in production unapproved",
        body=DRIFT_BODY,
        dedupe_key=dedupe_key,
    )


def make_due(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=5))


# ---------------------------------------------------------------- raising


def test_raising_an_alert_creates_one_delivery_per_active_subscription_and_audits_it(product, admin_user, webhook):
    email, _ = services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="email", target="oncall@example.test"
    )
    paused, _ = services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="email", target="paused@example.test"
    )
    services.alert_subscription_set_active(actor=admin_user, subscription=paused, active=False)
    services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="lockout", channel="email", target="security@example.test"
    )

    alert = raise_drift(product)

    deliveries = Delivery.objects.filter(alert=alert)
    assert {d.subscription_id for d in deliveries} == {webhook[0].pk, email.pk}
    assert {d.state for d in deliveries} == {"pending"}
    event = AuditEvent.objects.get(action="alert.raised")
    assert event.product_key == "rsd"
    assert event.object_human_id == alert.human_id
    assert event.after["event_kind"] == "drift"
    assert len(event.after["deliveries"]) == 2


def test_deliveries_are_queued_only_when_the_caller_commits(product, webhook, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        raise_drift(product)
    assert len(callbacks) == 1


def test_an_alert_raised_in_a_rolled_back_transaction_does_not_exist(
    product, webhook, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        raise_drift(product)
        raise RuntimeError("the fact was not committed")
    assert Alert.objects.count() == 0
    assert Delivery.objects.count() == 0
    assert callbacks == []


def test_the_same_dedupe_key_alerts_once(product, webhook):
    first = raise_drift(product, dedupe_key="drift:production:abab")
    second = raise_drift(product, dedupe_key="drift:production:abab")
    assert first.pk == second.pk
    assert Delivery.objects.count() == 1
    assert AuditEvent.objects.filter(action="alert.raised").count() == 1


def test_an_unknown_event_kind_is_refused(product):
    with pytest.raises(ValidationFailed, match="unknown event kind 'party'"):
        services.alert_raise(product=product, event_kind="party", subject="x", body={})


# ---------------------------------------------------------------- subscriptions and targets


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ftp://hooks.example.test/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("https://user:pw@hooks.example.test/x", "must not carry credentials"),
        ("https://token@hooks.example.test/x", "must not carry credentials"),
        ("https:///no-host", "has no host"),
        ("http://hooks.example.test:99999/x", "not a valid URL"),
    ],
)
def test_webhook_targets_must_be_plain_http_urls(product, admin_user, target, message):
    with pytest.raises(ValidationFailed, match=message):
        services.alert_subscription_create(
            actor=admin_user, product=product, event_kind="drift", channel="webhook", target=target
        )
    assert AlertSubscription.objects.count() == 0


def test_email_targets_must_be_addresses(product, admin_user):
    with pytest.raises(ValidationFailed, match="is not an e-mail address"):
        services.alert_subscription_create(
            actor=admin_user, product=product, event_kind="drift", channel="email", target="not-an-address"
        )


def test_the_webhook_secret_is_stored_encrypted_and_never_audited(product, admin_user, webhook):
    subscription, secret, _ = webhook
    assert len(secret) >= 40
    assert secret not in subscription.secret_encrypted
    assert services.subscription_secret(subscription) == secret
    event = AuditEvent.objects.get(action="alert_subscription.created")
    assert secret not in json.dumps(event.after)
    assert event.after["target"] == subscription.target


# ---------------------------------------------------------------- delivering


def test_the_signature_header_verifies_with_the_subscription_secret(product, webhook):
    subscription, secret, receiver = webhook
    alert = raise_drift(product)
    delivery = Delivery.objects.get(alert=alert)

    outcome = services.delivery_attempt(delivery_id=delivery.pk)

    assert outcome.state == "delivered"
    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-custody-signature"], expected)
    wrong = "sha256=" + hmac.new(b"not the secret", request["body"], hashlib.sha256).hexdigest()
    assert headers["x-custody-signature"] != wrong
    assert headers["x-custody-event"] == "drift"
    assert headers["x-custody-delivery"] == str(delivery.pk)
    assert headers["content-type"] == "application/json"
    payload = json.loads(request["body"])
    assert payload["alert"] == alert.human_id
    assert payload["product"] == "rsd"
    assert payload["body"] == DRIFT_BODY
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None
    assert list(delivery.attempt_log.values_list("status_code", "succeeded")) == [(200, True)]


def test_slack_format_sends_text_and_blocks(product, admin_user, receiver_factory):
    receiver = receiver_factory(200)
    subscription, secret = services.alert_subscription_create(
        actor=admin_user,
        product=product,
        event_kind="break_glass",
        channel="webhook",
        target=receiver.url,
        body_format="slack",
    )
    alert = services.alert_raise(
        product=product,
        event_kind="break_glass",
        subject="DEP-7 shipped to production by Sam SRE",
        body={"deployment": "DEP-7", "justification": "Sepsis scores stale after a failed job"},
    )
    services.delivery_attempt(delivery_id=Delivery.objects.get(alert=alert).pk)

    [request] = receiver.requests
    payload = json.loads(request["body"])
    assert set(payload) == {"text", "blocks"}
    assert payload["text"] == "[Custody rsd] Break-glass deployment: DEP-7 shipped to production by Sam SRE"
    assert [block["type"] for block in payload["blocks"]] == ["header", "section", "context"]
    assert payload["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "Break-glass deployment: DEP-7 shipped to production by Sam SRE",
    }
    assert payload["blocks"][1]["fields"][0] == {"type": "mrkdwn", "text": "*deployment*\nDEP-7"}
    assert alert.human_id in payload["blocks"][2]["elements"][0]["text"]
    # The Slack body is signed like any other.
    signature = request["headers"]["X-Custody-Signature"]
    assert signature == "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()


def test_email_subscriptions_are_sent_with_send_mail(product, admin_user):
    services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="email", target="oncall@example.test"
    )
    alert = raise_drift(product)
    outcome = services.delivery_attempt(delivery_id=Delivery.objects.get(alert=alert).pk)
    assert outcome.state == "delivered"
    [message] = mail.outbox
    assert message.to == ["oncall@example.test"]
    assert message.subject == "[Custody rsd] Drift: sha256:abab… runs in production unapproved"
    assert "environment: production" in message.body
    assert alert.human_id in message.body


def test_failures_back_off_30s_2m_10m_1h_6h_then_the_delivery_is_dead(product, admin_user, receiver_factory):
    receiver = receiver_factory(503)
    services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="webhook", target=receiver.url
    )
    delivery = Delivery.objects.get(alert=raise_drift(product))

    waits = []
    for _ in range(5):
        before = timezone.now()
        outcome = services.delivery_attempt(delivery_id=delivery.pk)
        assert outcome.state == "failed"
        waits.append(outcome.retry_in)
        delivery.refresh_from_db()
        assert delivery.next_attempt_at >= before + timedelta(seconds=outcome.retry_in)
        make_due(delivery)
    assert waits == [30, 120, 600, 3600, 21600]

    outcome = services.delivery_attempt(delivery_id=delivery.pk)

    assert (outcome.state, outcome.retry_in) == ("dead", None)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("dead", 6, 503)
    assert delivery.last_error.startswith("HTTP 503")
    assert delivery.next_attempt_at is None
    assert DeliveryAttempt.objects.filter(delivery=delivery, status_code=503, succeeded=False).count() == 6
    assert len(receiver.requests) == 6
    dead = AuditEvent.objects.get(action="alert.delivery_dead")
    assert dead.after["attempts"] == 6


def test_the_backoff_comes_from_the_setting_when_set(settings):
    settings.CUSTODY_ALERT_BACKOFF_SECONDS = [1, 5]
    assert [services.backoff_after(n) for n in (1, 2, 3, 4)] == [1, 5, 5, 5]


def test_an_unreachable_receiver_is_a_failed_attempt_with_the_error(product, admin_user):
    services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="webhook", target="http://127.0.0.1:9/closed"
    )
    delivery = Delivery.objects.get(alert=raise_drift(product))
    outcome = services.delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.state, outcome.retry_in) == ("failed", 30)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "ConnectionError" in attempt.error


def test_a_delivered_delivery_is_never_sent_again(product, webhook):
    _, _, receiver = webhook
    delivery = Delivery.objects.get(alert=raise_drift(product))
    services.delivery_attempt(delivery_id=delivery.pk)
    outcome = services.delivery_attempt(delivery_id=delivery.pk)
    assert outcome.skipped == "already delivered"
    assert len(receiver.requests) == 1
    assert tasks.deliver.apply(args=[delivery.pk]).get() == "skipped: already delivered"


def test_a_duplicate_message_before_the_retry_is_due_sends_nothing(product, admin_user, receiver_factory):
    receiver = receiver_factory(503)
    services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="webhook", target=receiver.url
    )
    delivery = Delivery.objects.get(alert=raise_drift(product))
    services.delivery_attempt(delivery_id=delivery.pk)
    outcome = services.delivery_attempt(delivery_id=delivery.pk)
    assert outcome.skipped == "not due yet"
    assert len(receiver.requests) == 1


# ---------------------------------------------------------------- the sweep


def test_the_sweep_requeues_only_unfinished_deliveries_that_are_overdue(product, admin_user, monkeypatch):
    for address in ("a@example.test", "b@example.test", "c@example.test", "d@example.test"):
        services.alert_subscription_create(
            actor=admin_user, product=product, event_kind="drift", channel="email", target=address
        )
    alert = raise_drift(product)
    lost, retrying, future, delivered = Delivery.objects.filter(alert=alert).order_by("subscription__target")
    long_ago = timezone.now() - timedelta(minutes=10)
    Delivery.objects.filter(pk=lost.pk).update(next_attempt_at=long_ago)
    Delivery.objects.filter(pk=retrying.pk).update(state="failed", attempts=2, next_attempt_at=long_ago)
    Delivery.objects.filter(pk=future.pk).update(state="failed", next_attempt_at=timezone.now() + timedelta(hours=1))
    Delivery.objects.filter(pk=delivered.pk).update(state="delivered", delivered_at=long_ago, next_attempt_at=long_ago)
    queued = []
    monkeypatch.setattr(tasks.deliver, "delay", lambda delivery_id: queued.append(delivery_id))

    assert tasks.redeliver_due() == 2

    assert sorted(queued) == sorted([lost.pk, retrying.pk])


def test_the_sweep_leaves_fresh_deliveries_to_their_own_message(product, admin_user, monkeypatch):
    services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="email", target="a@example.test"
    )
    raise_drift(product)
    queued = []
    monkeypatch.setattr(tasks.deliver, "delay", lambda delivery_id: queued.append(delivery_id))
    assert tasks.redeliver_due(grace_seconds=60) == 0
    assert tasks.redeliver_due(grace_seconds=-1) == 1


def test_a_swept_delivery_is_delivered(product, admin_user):
    services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="email", target="a@example.test"
    )
    delivery = Delivery.objects.get(alert=raise_drift(product))
    make_due(delivery)
    # Tasks are eager in tests: the sweep's re-queue delivers at once.
    assert tasks.redeliver_due(grace_seconds=0) == 1
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert len(mail.outbox) == 1
