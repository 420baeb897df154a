"""Management commands: tokens, the audit verifier and checkpoints, policy loading, roles, keys, the demo seed."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from changecontrol.models import (
    ApiToken,
    AuditCheckpoint,
    AuditEvent,
    ChangeRequest,
    PolicyVersion,
    Product,
    Signature,
    User,
)
from changecontrol.policy import DEFAULT_POLICY_YAML
from changecontrol.roles import roles_of
from tests.conftest import client_for


@pytest.fixture(autouse=True)
def private_var_dir(settings, tmp_path):
    """seed_demo keeps its CI token under VAR_DIR: each test gets its own, as parallel tests share none."""
    settings.VAR_DIR = tmp_path


pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def edit_event_behind_the_triggers_back(event_id: int, reason: str) -> None:
    with connection.cursor() as cursor:
        # Deferred foreign-key checks of this test's inserts must run first, or PostgreSQL refuses the ALTER.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE changecontrol_auditevent DISABLE TRIGGER custody_audit_no_update_delete")
        cursor.execute("UPDATE changecontrol_auditevent SET reason = %s WHERE id = %s", [reason, event_id])
        cursor.execute("ALTER TABLE changecontrol_auditevent ENABLE TRIGGER custody_audit_no_update_delete")


def test_create_token_prints_the_secret_as_its_last_line_and_it_works_as_bearer(product):
    out, _ = run("create_token", "--product", "rsd", "--name", "ci", "--scopes", "evidence:write,status:read")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("cst_")
    token = ApiToken.objects.get(token_sha256=ApiToken.hash_secret(secret))
    assert token.user.username == "ci-rsd" and token.user.is_service_account
    assert token.scopes == ["evidence:write", "status:read"]
    assert not token.user.has_usable_password()
    response = client_for(token=secret).get("/api/v1/products")
    assert response.status_code == 200
    assert [p["key"] for p in response.json()] == ["rsd"]
    assert AuditEvent.objects.filter(action="account.created", object_human_id="CI (rsd)").exists()
    assert AuditEvent.objects.filter(action="token.created", product_key="rsd").exists()


def test_create_token_reuses_an_existing_service_account(product, ci_account):
    run("create_token", "--product", "rsd", "--name", "deploy", "--scopes", "deployments:write", "--user", "ci-rsd")
    assert ci_account.api_tokens.get().name == "deploy"
    assert User.objects.filter(username="ci-rsd").count() == 1


def test_create_token_refuses_unknown_scopes_and_products(product):
    with pytest.raises(CommandError, match="unknown scopes everything:write"):
        run("create_token", "--product", "rsd", "--name", "ci", "--scopes", "everything:write")
    with pytest.raises(CommandError, match="no product with key nope"):
        run("create_token", "--product", "nope", "--name", "ci", "--scopes", "status:read")
    with pytest.raises(CommandError, match="at least one scope"):
        run("create_token", "--product", "rsd", "--name", "ci", "--scopes", " , ")
    assert not ApiToken.objects.exists()


def test_a_refused_token_request_creates_no_service_account_and_audits_nothing(product):
    accounts, events = User.objects.count(), AuditEvent.objects.count()
    for scopes in ("everything:write", "status:read,releases:delete"):
        with pytest.raises(CommandError, match="unknown scopes"):
            run("create_token", "--product", "rsd", "--name", "fresh", "--scopes", scopes)
    with pytest.raises(CommandError, match="no product with key nope"):
        run("create_token", "--product", "rsd,nope", "--name", "fresh", "--scopes", "status:read")
    assert not User.objects.filter(username__startswith="fresh").exists()
    assert (User.objects.count(), AuditEvent.objects.count()) == (accounts, events)


def test_revoked_token_stops_working(product, ci_token):
    prefix = ci_token[:10]
    out, _ = run("revoke_token", prefix, "--reason", "leaked in a build log")
    assert "Revoked token ci" in out
    assert client_for(token=ci_token).get("/api/v1/products").status_code == 401
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.reason == "leaked in a build log"


def test_verify_audit_prints_the_count_and_succeeds_when_intact(product):
    run("checkpoint_audit")
    out, _ = run("verify_audit")
    events = AuditEvent.objects.count()
    assert out.splitlines()[0].startswith(f"Full verification: {events} events (#1–#{events}), 1 checkpoints")
    assert out.splitlines()[-1].startswith("Audit trail intact: every event, checkpoint and sealed record verified")


def test_verify_audit_exits_1_naming_the_first_edited_event(product):
    victim = AuditEvent.objects.get(action="policy.activated")
    edit_event_behind_the_triggers_back(victim.pk, "nothing to see here")
    with pytest.raises(CommandError) as broken:
        run("verify_audit")
    assert broken.value.returncode == 1
    assert f"BROKEN: 1 finding(s); the first: event #{victim.pk}" in str(broken.value)
    assert "policy.activated" in str(broken.value) and "altered" in str(broken.value)


def test_checkpoint_audit_signs_the_chain_head(product):
    head_id = AuditEvent.objects.order_by("-id").first().pk
    out, _ = run("checkpoint_audit")
    checkpoint = AuditCheckpoint.objects.get()
    assert checkpoint.event_id == head_id
    assert f"event #{head_id}" in out
    assert "Audit trail intact" in run("verify_audit")[0]


def test_load_policy_proposes_a_version_that_awaits_a_quality_signature(product, tmp_path, cast):
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY_YAML.replace("valid_for_hours: 72", "valid_for_hours: 48"))
    out, _ = run(
        "load_policy",
        "--product",
        "rsd",
        "--file",
        str(path),
        "--reason",
        "Shorter approval window",
        "--author",
        "polly",
    )
    version = PolicyVersion.objects.get(product=product, version=2)
    assert version.state == PolicyVersion.State.PROPOSED and version.author.username == "polly"
    assert "Proposed rsd policy v2" in out and "quality reviewer" in out
    again, _ = run("load_policy", "--product", "rsd", "--file", str(path), "--reason", "again", "--author", "polly")
    assert "nothing new stored" in again
    assert PolicyVersion.objects.filter(product=product).count() == 2


def test_load_policy_prints_every_error_with_its_line_and_stores_nothing(product, tmp_path, cast):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "policy: rsd\n"
        "risk:\n"
        "  questions:\n"
        "    patient_safety_impact: {none: 0, direct: 4}\n"
        "  tiers: [{tier: low, min_score: 0}, {tier: high, min_score: 4}]\n"
        "change_approval:\n"
        "  low: {auto: true}\n"
        "  high: {roles: [wizard], count: 1}\n"
        "environments: {}\n"
        "surprise: 1\n"
    )
    err = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command(
            "load_policy",
            "--product",
            "rsd",
            "--file",
            str(path),
            "--reason",
            "r",
            "--author",
            "polly",
            stdout=StringIO(),
            stderr=err,
        )
    assert refused.value.returncode == 1
    lines = err.getvalue().splitlines()
    assert "is not a valid policy" in lines[0]
    assert any(line.strip().startswith(f"{path}:8:") and "wizard" in line for line in lines)
    assert any(line.strip().startswith(f"{path}:10:") and "surprise" in line for line in lines)
    assert PolicyVersion.objects.filter(product=product).count() == 1


def test_load_policy_for_another_product_name_is_refused(product, other_product, tmp_path, cast):
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY_YAML)
    with pytest.raises(CommandError, match="names product 'rsd'"):
        run("load_policy", "--product", "lab", "--file", str(path), "--reason", "copy", "--author", "rory")


def test_grant_role_and_revoke_are_audited(product, cast):
    olga = cast["olga"]
    run("grant_role", "--user", "olga", "--product", "rsd", "--role", "auditor")
    assert roles_of(User.objects.get(pk=olga.pk), product) == {"auditor"}
    run(
        "grant_role",
        "--user",
        "olga",
        "--product",
        "rsd",
        "--role",
        "auditor",
        "--revoke",
        "--reason",
        "audit finished",
    )
    assert roles_of(User.objects.get(pk=olga.pk), product) == set()
    actions = list(AuditEvent.objects.filter(object_human_id="rsd:olga").values_list("action", "reason"))
    assert actions == [("role.granted", ""), ("role.revoked", "audit finished")]


def test_create_signing_key_writes_a_private_file_and_never_overwrites(tmp_path):
    path = tmp_path / "keys" / "custody.pem"
    out, _ = run("create_signing_key", "--file", str(path))
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert path.stat().st_mode & 0o777 == 0o600
    assert "Key ID: " in out and "BEGIN PUBLIC KEY" in out
    before = path.read_bytes()
    with pytest.raises(CommandError, match="never overwrites"):
        run("create_signing_key", "--file", str(path))
    assert path.read_bytes() == before


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (User, Product, PolicyVersion, ChangeRequest, Signature, ApiToken, AuditEvent)
    }


def test_seed_demo_twice_creates_nothing_new_the_second_time(settings, monkeypatch):
    from config import demo

    monkeypatch.setattr(demo, "APP_DEMOS", ())  # the core seed alone: not even an audit event the second time
    settings.DEBUG = True
    first, _ = run("seed_demo")
    after_first = _counts()
    second, _ = run("seed_demo")
    assert _counts() == after_first
    assert "8 new change request(s)" in first and "0 new change request(s)" in second
    secret = first.split("Demo CI token for rsd")[1].splitlines()[1].strip()
    assert secret in second  # the same demo token is printed again, not a new one
    assert "Open http://127.0.0.1:8000" in second and "custody-demo-password" in second
    assert "Audit trail intact" in run("verify_audit")[0]


def test_seed_demo_with_every_app_twice_adds_no_records(settings):
    from runtime.models import Deployment

    settings.DEBUG = True
    run("seed_demo")
    # The demo's break-glass is a real emergency: a hotfix no one approved, its retrospective review due.
    emergency = Deployment.objects.get(kind=Deployment.Kind.BREAK_GLASS)
    assert not emergency.authorised and emergency.artifact.releases.count() == 0
    assert emergency.review.state == "due" and emergency.review.reviewed_at is None
    after_first = {name: count for name, count in _counts().items() if name != "AuditEvent"}
    run("seed_demo")
    assert {name: count for name, count in _counts().items() if name != "AuditEvent"} == after_first


def test_seed_demo_builds_products_policies_cast_and_change_requests_through_services(settings):
    settings.DEBUG = True
    run("seed_demo")
    rsd, lab = Product.objects.get(key="rsd"), Product.objects.get(key="lab")
    assert (rsd.name, rsd.safety_class, lab.name, lab.safety_class) == (
        "Risk Score Dashboard",
        "B",
        "Lab Results Gateway",
        "C",
    )
    for product in (rsd, lab):
        active = product.policy_versions.get(state="active")
        assert active.author.username == "admin" and active.document.name == product.key
    states = set(ChangeRequest.objects.values_list("state", flat=True))
    assert states >= {"draft", "submitted", "approved", "implemented", "rejected", "withdrawn"}
    assert ChangeRequest.objects.filter(approved_automatically=True, tier="low").exists()
    assert ChangeRequest.objects.get(state="rejected").rejection_reason.startswith("The verification plan")
    lena = User.objects.get(username="lena")
    assert roles_of(lena, lab) == {"engineer"} and roles_of(lena, rsd) == set()
    assert client_for(lena).get("/api/v1/products/rsd").status_code == 404
    assert (
        AuditEvent.objects.filter(action="signature.approved").count()
        == Signature.objects.filter(meaning="approved").count()
    )


def test_seed_demo_refuses_to_run_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="CUSTODY_DEBUG=1"):
        run("seed_demo")
    assert not User.objects.exists()


def test_seed_demo_offers_its_context_to_every_app_demo(settings, monkeypatch):
    from changecontrol import demo as core_demo
    from config import demo

    seen = []

    class AppDemo:
        __name__ = "an app's demo"
        seed = staticmethod(seen.append)

    monkeypatch.setattr(demo, "APP_DEMOS", (AppDemo,))
    settings.DEBUG = True
    with transaction.atomic():
        run("seed_demo")
    [context] = seen
    assert isinstance(context, core_demo.DemoContext)
    assert set(context.products) == {"rsd", "lab"} and context.people["grace"].username == "grace"
    assert context.password == core_demo.DEMO_PASSWORD
