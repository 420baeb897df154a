"""The Django admin: audited edits, the unlock action, tokens shown once, records that cannot be edited."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from changecontrol.models import ApiToken, AuditEvent, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def test_every_admin_list_loads(admin_client, product, ci_token):
    for model in ("product", "user", "apitoken", "auditevent", "auditcheckpoint", "policyversion", "signature"):
        response = admin_client.get(f"/admin/changecontrol/{model}/")
        assert response.status_code == 200, model


def test_audit_events_cannot_be_added_changed_or_deleted(admin_client, product):
    event = AuditEvent.objects.first()
    assert admin_client.get("/admin/changecontrol/auditevent/add/").status_code == 403
    page = admin_client.get(f"/admin/changecontrol/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client.post(f"/admin/changecontrol/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"/admin/changecontrol/auditevent/{event.pk}/change/", {"reason": "x"}).status_code == 403


def test_unlock_action_is_audited(admin_client, admin_user, author, settings):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 1
    settings.CUSTODY_LOCKOUT_CLIENTS = 1
    Client(REMOTE_ADDR="10.0.0.1").post("/accounts/login/", {"username": "alice", "password": "wrong"})
    author.refresh_from_db()
    assert author.is_locked()
    admin_client.post("/admin/changecontrol/user/", {"action": "unlock_accounts", "_selected_action": [author.pk]})
    author.refresh_from_db()
    assert not author.is_locked()
    assert AuditEvent.objects.filter(action="account.unlocked", actor=admin_user, object_id=str(author.pk)).exists()
    assert Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_token_created_in_the_admin_shows_its_secret_once(admin_client, product, ci_account):
    response = admin_client.post(
        "/admin/changecontrol/apitoken/add/",
        {"name": "deploy", "user": ci_account.pk, "products": [product.pk], "scopes": ["deployments:write"]},
        follow=True,
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(name="deploy")
    secret = next(str(m).split(": ")[-1] for m in get_messages(response.wsgi_request) if "not be shown again" in str(m))
    assert ApiToken.hash_secret(secret) == token.token_sha256
    assert token.scopes == ["deployments:write"] and list(token.products.all()) == [product]
    assert AuditEvent.objects.filter(action="token.created", actor__username="ada").exists()
    detail = admin_client.get(f"/admin/changecontrol/apitoken/{token.pk}/change/")
    assert secret.encode() not in detail.content


def test_revoke_action_is_audited(admin_client, product, ci_token):
    token = ApiToken.objects.get()
    admin_client.post("/admin/changecontrol/apitoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoked", actor__username="ada").exists()


def test_product_edit_is_audited(admin_client, product):
    data = {
        "name": "Risk Score Dashboard v2",
        "safety_class": "B",
        "safety_rationale": product.safety_rationale,
        "repository_url": product.repository_url,
        "environments-TOTAL_FORMS": "0",
        "environments-INITIAL_FORMS": "0",
    }
    response = admin_client.post(f"/admin/changecontrol/product/{product.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="product.updated")
    assert event.before == {"name": "Risk Score Dashboard"} and event.after == {"name": "Risk Score Dashboard v2"}


def test_people_cannot_be_deleted_only_deactivated(admin_client, author):
    assert admin_client.post(f"/admin/changecontrol/user/{author.pk}/delete/", {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=author.pk).exists()
