"""Bearer-token authentication and the prepared hot-path statements behind it."""

from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from changecontrol.api_auth import active_token
from changecontrol.models import ApiToken
from common import prepared_sql
from tests.conftest import client_for


def test_a_token_comes_back_with_its_user_scopes_and_times_in_one_query(ci_token, ci_account):
    with CaptureQueriesContext(connection) as queries:
        token = active_token(ApiToken.hash_secret(ci_token))
        assert token.user.username == ci_account.username and token.user.is_service_account
    assert len(queries) == 1
    stored = ApiToken.objects.get()
    assert token.pk == stored.pk and token.scopes == stored.scopes and isinstance(token.scopes, list)
    assert isinstance(token.created_at, datetime) and timezone.is_aware(token.created_at)
    assert token.name == "ci" and token.prefix == ci_token[:10]


def test_unknown_revoked_and_deactivated_tokens_are_refused_with_what_to_do(ci_token, ci_account):
    refusal = "the token is unknown or revoked; ask an administrator for a new one"
    assert client_for(token=ci_token).get("/api/v1/products").status_code == 200
    unknown = client_for(token=ci_token + "x").get("/api/v1/products")
    assert unknown.status_code == 401 and refusal in unknown.content.decode()
    ci_account.is_active = False
    ci_account.save(update_fields=["is_active"])
    assert client_for(token=ci_token).get("/api/v1/products").status_code == 401
    ci_account.is_active = True
    ci_account.save(update_fields=["is_active"])
    ApiToken.objects.update(revoked_at=timezone.now())
    revoked = client_for(token=ci_token).get("/api/v1/products")
    assert revoked.status_code == 401 and refusal in revoked.content.decode()


def test_a_malformed_authorization_header_is_refused(api, ci_token):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ci_token} extra")
    response = client.get("/api/v1/products")
    assert response.status_code == 401 and "Bearer <token>" in response.content.decode()


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_bearer_scheme_is_case_insensitive_and_costs_one_query(api, ci_token, scheme):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {ci_token}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/products")
    assert response.status_code == 200 and [p["key"] for p in response.json()] == ["rsd"], response.content
    assert len([q for q in queries if "token_sha256" in q["sql"]]) == 1  # the one lookup, whatever the spelling


@pytest.mark.parametrize("authorization", [None, "Token abc123", "Basic YWxpY2U6c2VjcmV0", "   "])
def test_without_bearer_credentials_the_401_says_how_to_authenticate(api, ci_token, authorization):
    client = api()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.get("/api/v1/products")
    assert response.status_code == 401, response.content
    assert response.json() == {
        "error": "not_authenticated",
        "detail": "Authentication credentials were not provided: send Authorization: Bearer <token>, or sign in.",
    }
    assert response["WWW-Authenticate"].startswith("Bearer")


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_hot_path_statements_are_prepared_once_per_connection():
    sql = "SELECT %s::int + 1 AS prepared_statement_probe"
    assert prepared_sql.fetchone(sql, [1]) == (2,)
    assert prepared_sql.fetchone(sql, [41]) == (42,)
    assert sum("prepared_statement_probe" in statement for statement in _prepared_statements()) == 1


@pytest.mark.django_db
def test_without_prepared_statements_the_same_statement_runs_unprepared():
    # What CUSTODY_DB_PREPARED_STATEMENTS=0 sets, for connection poolers that cannot keep prepared statements.
    connection.ensure_connection()
    saved, connection.connection.prepare_threshold = connection.connection.prepare_threshold, None
    try:
        assert prepared_sql.fetchone("SELECT %s::int * 2 AS unprepared_probe", [21]) == (42,)
    finally:
        connection.connection.prepare_threshold = saved
    assert not any("unprepared_probe" in statement for statement in _prepared_statements())


@pytest.mark.django_db
def test_the_query_log_shows_a_prepared_statement_text():
    with CaptureQueriesContext(connection) as queries:
        assert prepared_sql.fetchone("SELECT %s::text AS logged_probe", ["x"]) == ("x",)
    assert "logged_probe" in queries[0]["sql"]
