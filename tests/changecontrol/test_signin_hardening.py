"""Sign-in gives outsiders nothing to enumerate or to lock at will; a locked or deactivated account stops at once."""

from __future__ import annotations

import statistics
import time

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client

from changecontrol.models import AuditEvent, User
from tests.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


class CountingHasher(PBKDF2PasswordHasher):
    """PBKDF2 with few iterations (a real hash, fast enough for tests) that counts the hashes it computes."""

    iterations = 20_000
    computed = 0

    def encode(self, password, salt, iterations=None):
        type(self).computed += 1
        return super().encode(password, salt, iterations)


@pytest.fixture
def real_hasher(settings, author):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    author.set_password(PASSWORD)
    author.save(update_fields=["password"])
    CountingHasher.computed = 0
    return CountingHasher


def sign_in(username: str, password: str, address: str = "127.0.0.1"):
    return Client(REMOTE_ADDR=address).post(LOGIN, {"username": username, "password": password})


def test_unknown_known_and_locked_usernames_each_cost_one_password_hash(real_hasher, author, settings):
    settings.CUSTODY_LOCKOUT_CLIENTS = 1
    for username, address in (("nobody-here", "10.0.0.1"), ("alice", "10.0.0.2")):
        before = real_hasher.computed
        sign_in(username, "wrong password", address)
        assert real_hasher.computed - before == 1, username
    author.locked_at = author.date_joined
    settings.CUSTODY_LOCKOUT_MINUTES = 0
    author.save(update_fields=["locked_at"])
    before = real_hasher.computed
    sign_in("alice", PASSWORD, "10.0.0.3")
    assert real_hasher.computed - before == 1


def test_sign_in_takes_the_same_time_for_known_and_unknown_usernames(real_hasher, settings):
    settings.CUSTODY_SIGNIN_CLIENT_LIMIT = 1000
    settings.CUSTODY_LOCKOUT_THRESHOLD = 1000

    def median_ms(username: str) -> float:
        timings = []
        for attempt in range(9):
            started = time.perf_counter()
            sign_in(username, f"guess {attempt}")
            timings.append(time.perf_counter() - started)
        return statistics.median(timings) * 1000

    median_ms("warm-up")
    unknown, known = median_ms("nobody-here"), median_ms("alice")
    assert 0.5 < known / unknown < 2, f"known {known:.1f} ms, unknown {unknown:.1f} ms"


def test_an_outsider_at_one_address_cannot_lock_an_account(author, settings):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 3
    for _ in range(10):
        sign_in("alice", "guess", "203.0.113.9")
    author.refresh_from_db()
    assert not author.is_locked() and author.failed_login_count == 3  # the rest were refused before any check
    # The outsider's address is throttled for alice, even with the right password ...
    assert "_auth_user_id" not in sign_in("alice", PASSWORD, "203.0.113.9").wsgi_request.session
    # ... while alice signs in from her own address.
    assert sign_in("alice", PASSWORD, "198.51.100.4").status_code == 302


def test_one_address_is_throttled_across_usernames_known_or_not(author, settings):
    settings.CUSTODY_SIGNIN_CLIENT_LIMIT = 4
    for username in ("alice", "bob", "carol", "dave"):
        sign_in(username, "guess", "203.0.113.9")
    failures = AuditEvent.objects.filter(action="login.failed").count()
    response = sign_in("rory", "guess", "203.0.113.9")
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="login.failed").count() == failures  # refused unchecked


def test_ipv6_addresses_of_one_host_count_as_one_client(author, settings):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 2
    sign_in("alice", "guess", "2001:db8:1:2::a")
    sign_in("alice", "guess", "2001:db8:1:2::b")
    assert sign_in("alice", PASSWORD, "2001:db8:1:2::c").status_code == 200  # same /64: throttled
    assert sign_in("alice", PASSWORD, "2001:db8:9:9::c").status_code == 302


def test_failures_from_many_clients_lock_the_account(author, settings):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 3
    settings.CUSTODY_LOCKOUT_CLIENTS = 3
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        sign_in("alice", "guess", address)
    author.refresh_from_db()
    assert author.is_locked()
    assert AuditEvent.objects.filter(action="account.locked", object_id=str(author.pk)).exists()


# ---------------------------------------------------------------- locked and deactivated accounts stop at once


def lock(user: User) -> None:
    from django.utils import timezone

    User.objects.filter(pk=user.pk).update(locked_at=timezone.now())


def personal_token(user: User, product) -> str:
    from changecontrol.api_auth import token_create

    _, secret = token_create(actor=user, name="mine", user=user, products=[product], scopes=["status:read"])
    return secret


def test_a_locked_accounts_personal_token_is_refused_saying_why(author, product):
    token = personal_token(author, product)
    assert client_for(token=token).get("/api/v1/products/rsd/items").status_code == 200
    lock(author)
    response = client_for(token=token).get("/api/v1/products/rsd/items")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert "account is locked" in response.json()["detail"]


def test_a_deactivated_accounts_personal_token_is_refused_saying_why(author, product):
    token = personal_token(author, product)
    User.objects.filter(pk=author.pk).update(is_active=False)
    response = client_for(token=token).get("/api/v1/products/rsd/items")
    assert response.status_code == 401 and "account is deactivated" in response.json()["detail"]


@pytest.mark.parametrize("how", ["locked", "deactivated"])
def test_an_open_session_ends_at_the_next_request(author, how):
    browser, api = Client(), Client()
    browser.force_login(author)
    api.force_login(author)
    assert browser.get("/").status_code == 200
    if how == "locked":
        lock(author)
    else:
        User.objects.filter(pk=author.pk).update(is_active=False)
    page = browser.get("/", follow=True)
    assert page.redirect_chain[0][0].startswith("/accounts/login/")
    assert f"account is {how}" in page.content.decode()
    response = api.get("/api/v1/products/rsd/items")
    assert response.status_code == 401 and f"account is {how}" in response.json()["detail"]
    assert "_auth_user_id" not in api.session  # the session itself is gone, not merely refused


def test_locking_and_deactivating_delete_the_accounts_sessions(author, admin_client, settings):
    from django.contrib.sessions.models import Session

    from changecontrol.auth import account_register_failure

    settings.CUSTODY_LOCKOUT_THRESHOLD = 1
    settings.CUSTODY_LOCKOUT_CLIENTS = 1
    Client().force_login(author)
    assert Session.objects.count() >= 1
    account_register_failure(user=author, context="login", clients=1)
    assert not [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(author.pk)]
    Client().force_login(author)
    User.objects.filter(pk=author.pk).update(locked_at=None)
    form = admin_client.get(f"/admin/changecontrol/user/{author.pk}/change/").context["adminform"].form
    data = {
        k: v for k, v in form.initial.items() if v is not None and k not in ("password", "groups", "user_permissions")
    }
    data.update({"is_active": "", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    admin_client.post(f"/admin/changecontrol/user/{author.pk}/change/", data)
    author.refresh_from_db()
    assert not author.is_active
    assert not [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(author.pk)]


def test_the_signature_that_locks_an_account_still_answers_and_the_session_ends_next(
    product, release_manager, quality_reviewer, settings
):
    from tests.conftest import change_request_sha256, open_change_request

    settings.CUSTODY_LOCKOUT_THRESHOLD = 1
    change_request = open_change_request(product=product, requester=release_manager)
    client = client_for(quality_reviewer)
    body = {
        "meaning": "approved",
        "comment": "ok",
        "username": "quinn",
        "password": "wrong",
        "content_sha256": change_request_sha256(change_request),
    }
    refused = client.post(f"/api/v1/change-requests/{change_request.human_id}/signatures", body, format="json")
    assert refused.status_code in (400, 401, 403) and "now locked" in refused.json()["detail"]
    after = client.get("/api/v1/products/rsd/items")
    assert after.status_code == 401 and "account is locked" in after.json()["detail"]
