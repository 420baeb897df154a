"""The alert pages: subscriptions (administrators change them) and the delivery log (members read it)."""

from __future__ import annotations

import pytest
from django.test import Client

from alerts import services
from alerts.models import AlertSubscription, Delivery
from changecontrol import roles
from changecontrol.models import Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def dead_delivery(product, admin_user):
    subscription, _ = services.alert_subscription_create(
        actor=admin_user,
        product=product,
        event_kind="unauthorised_deployment",
        channel="webhook",
        target="http://127.0.0.1:9/closed",
    )
    alert = services.alert_raise(
        product=product, event_kind="unauthorised_deployment", subject="DEP-3 reached production unapproved", body={}
    )
    Delivery.objects.filter(alert=alert).update(state="dead", attempts=6, last_error="HTTP 503: down")
    return Delivery.objects.get(alert=alert)


def test_outsider_gets_404_on_every_alert_page(cast, dead_delivery):
    client = browser(cast["olga"])
    subscription = dead_delivery.subscription
    assert client.get("/products/rsd/alerts/deliveries/").status_code == 404
    assert client.get("/products/rsd/alerts/").status_code == 404
    assert (
        client.post(
            "/products/rsd/alerts/", {"event_kind": "drift", "channel": "email", "target": "x@example.test"}
        ).status_code
        == 404
    )
    assert client.post(f"/products/rsd/alerts/subscriptions/{subscription.pk}/toggle").status_code == 404
    assert AlertSubscription.objects.get(pk=subscription.pk).active


def test_a_member_of_another_product_cannot_see_this_products_delivery_log(other_product, admin_user, dead_delivery):
    lab_engineer = make_user("lena", "Lena Lab-Engineer")
    roles.role_grant(actor=admin_user, user=lab_engineer, product=other_product, role=Role.ENGINEER)
    client = browser(lab_engineer)
    assert client.get("/products/rsd/alerts/deliveries/").status_code == 404
    assert client.get("/products/lab/alerts/deliveries/").status_code == 200


def test_anonymous_visitors_are_sent_to_sign_in(db, product):
    response = Client().get("/products/rsd/alerts/deliveries/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_an_auditor_sees_dead_deliveries_in_the_log(cast, dead_delivery):
    response = browser(cast["audrey"]).get("/products/rsd/alerts/deliveries/?state=dead")
    assert response.status_code == 200
    page = response.content.decode()
    assert "DEP-3 reached production unapproved" in page
    assert "badge badge-dead" in page
    assert "http://127.0.0.1:9/closed" in page


def test_the_delivery_log_filters_by_state(cast, dead_delivery):
    response = browser(cast["audrey"]).get("/products/rsd/alerts/deliveries/?state=delivered")
    assert "DEP-3 reached production unapproved" not in response.content.decode()


def test_a_reviewer_may_read_subscriptions_but_not_change_them(cast, product):
    client = browser(cast["quinn"])
    assert client.get("/products/rsd/alerts/").status_code == 200
    response = client.post(
        "/products/rsd/alerts/", {"event_kind": "drift", "channel": "webhook", "target": "https://evil.example.test/x"}
    )
    assert response.status_code == 403
    assert AlertSubscription.objects.count() == 0


def test_an_administrator_subscribes_a_webhook_and_sees_its_secret_once(admin_user, product):
    client = browser(admin_user)
    response = client.post(
        "/products/rsd/alerts/",
        {
            "event_kind": "break_glass",
            "channel": "webhook",
            "target": "https://hooks.example.test/custody",
            "body_format": "slack",
        },
    )
    assert response.status_code == 200
    subscription = AlertSubscription.objects.get()
    secret = services.subscription_secret(subscription)
    assert secret in response.content.decode()
    assert (subscription.event_kind, subscription.body_format, subscription.created_by) == (
        "break_glass",
        "slack",
        admin_user,
    )
    later = client.get("/products/rsd/alerts/").content.decode()
    assert "https://hooks.example.test/custody" in later
    assert secret not in later


def test_a_url_with_credentials_is_refused_on_the_page(admin_user, product):
    response = browser(admin_user).post(
        "/products/rsd/alerts/",
        {"event_kind": "drift", "channel": "webhook", "target": "https://u:p@hooks.example.test/x"},
    )
    assert response.status_code == 400
    assert "must not carry credentials" in response.content.decode()
    assert AlertSubscription.objects.count() == 0


def test_an_administrator_pauses_and_resumes_a_subscription(admin_user, product):
    subscription, _ = services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="drift", channel="email", target="oncall@example.test"
    )
    client = browser(admin_user)
    assert client.post(f"/products/rsd/alerts/subscriptions/{subscription.pk}/toggle").status_code == 302
    subscription.refresh_from_db()
    assert subscription.active is False
    services.alert_raise(product=product, event_kind="drift", subject="drift while paused", body={})
    assert Delivery.objects.count() == 0
    client.post(f"/products/rsd/alerts/subscriptions/{subscription.pk}/toggle")
    subscription.refresh_from_db()
    assert subscription.active is True
