"""The fixed cast every test shares (STYLE.md), and the fixtures that reach real PostgreSQL and Redis."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from changecontrol import esign, roles, selectors, services
from changecontrol.api_auth import token_create
from changecontrol.models import ChangeRequest, PolicyVersion, Product, Role, User
from changecontrol.policy import DEFAULT_POLICY_YAML

pytest_plugins = ["tests.browser_fixtures"]

PASSWORD = "correct horse battery staple"

CAST = {
    # username: (printed name, role on rsd)
    "alice": ("Alice Author", Role.ENGINEER),
    "rory": ("Rory Release-Manager", Role.RELEASE_MANAGER),
    "quinn": ("Quinn Quality", Role.QUALITY),
    "sasha": ("Sasha Security", Role.SECURITY),
    "paula": ("Paula Product-Owner", Role.PRODUCT),
    "sam": ("Sam SRE", Role.SRE),
    "audrey": ("Audrey Auditor", Role.AUDITOR),
}


def _database_use(request) -> str:
    """'transactional', 'plain' or '' — how this test touches the database."""
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if "live_server" in names or "transactional_db" in names or (marker and marker.kwargs.get("transaction")):
        return "transactional"
    if marker or "db" in names:
        return "plain"
    return ""


# Every trigger refusing TRUNCATE on an append-only or sealed table (the audit trail, common.table_guards).
TRUNCATE_TRIGGERS = """
    SELECT format('ALTER TABLE %%I %s TRIGGER %%I', c.relname, t.tgname)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE t.tgname LIKE 'custody%%truncate' AND t.tgenabled %s 'D'
"""


def _switch_truncate_triggers(cursor, *, enable: bool) -> None:
    cursor.execute(TRUNCATE_TRIGGERS % ("ENABLE" if enable else "DISABLE", "=" if enable else "<>"))
    for (statement,) in cursor.fetchall():
        cursor.execute(statement)


@pytest.fixture(autouse=True)
def _audit_trigger_guard(request):
    """Sealed tables refuse TRUNCATE; transactional tests flush with TRUNCATE, so allow it only then."""
    use = _database_use(request)
    if not use or connection.vendor != "postgresql":
        yield
        return
    request.getfixturevalue("transactional_db" if use == "transactional" else "db")
    with connection.cursor() as cursor:
        _switch_truncate_triggers(cursor, enable=True)
    yield
    if use == "transactional":
        with connection.cursor() as cursor:
            _switch_truncate_triggers(cursor, enable=False)


@pytest.fixture(autouse=True)
def _own_signin_counters(settings):
    """Each test counts its own failed sign-ins: the counters live in a cache that workers and tests would share."""
    settings.CACHES = {
        **settings.CACHES,
        "signin": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex},
    }
    settings.CUSTODY_SIGNIN_CACHE = "signin"


GENERATED = re.compile(
    r"sha256:[0-9a-f]{64}|\b(?:DEP|PRM|EV|CR)-\d+|/\d+\b|\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)?"
)


def answer_shape(response) -> tuple[int, object]:
    """An API answer's status and body with what each answer generates (digests, ids, times) normalised: what must
    be identical when another product's record answers as a missing one."""

    def normalise(value):
        if isinstance(value, dict):
            return {key: normalise(item) for key, item in value.items()}
        if isinstance(value, list):
            return [normalise(item) for item in value]
        return GENERATED.sub("<x>", value) if isinstance(value, str) else value

    return response.status_code, normalise(response.json())


def change_request_sha256(change_request: ChangeRequest) -> str:
    """The content_sha256 a reviewer is shown for a change request now (the page's dialog and the API's GET)."""
    fresh = ChangeRequest.objects.select_related("product", "policy_version").get(pk=change_request.pk)
    return esign.content_sha256(selectors.change_request_signing_content(fresh))


def sign_change_request(
    change_request: ChangeRequest,
    signer: User,
    *,
    meaning: str = "approved",
    password: str = PASSWORD,
    comment: str = "Reviewed the evidence.",
    seen_sha256: str | None = None,
    **extra,
):
    """Sign as a reviewer who has just read the change request (unless `seen_sha256` says what they read instead)."""
    return services.change_request_sign(
        change_request=change_request,
        signer=signer,
        username=extra.pop("username", signer.username),
        password=password,
        meaning=meaning,
        seen_sha256=seen_sha256 or change_request_sha256(change_request),
        comment=comment,
        **extra,
    )


def policy_version_sha256(policy_version: PolicyVersion) -> str:
    """The content_sha256 a quality reviewer is shown for a policy version now."""
    fresh = PolicyVersion.objects.select_related("product").get(pk=policy_version.pk)
    return esign.content_sha256(selectors.policy_version_signing_content(fresh))


def dialog_sha256(html: str, action: str) -> str:
    """The content_sha256 a page's signing dialog (the form posting to `action`) will post back."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, flags=re.DOTALL)
    assert form is not None, f"no signing form posting to {action} on the page"
    hidden = re.search(r'<input type="hidden" name="content_sha256" value="([0-9a-f]{64})">', form.group(0))
    assert hidden is not None, f"the signing form posting to {action} carries no content_sha256"
    return hidden.group(1)


def make_user(username: str, full_name: str, **extra) -> User:
    user = User.objects.create_user(
        username=username, password=PASSWORD, full_name=full_name, email=f"{username}@example.test", **extra
    )
    return user


@pytest.fixture
def admin_user(db) -> User:
    return make_user("ada", "Ada Administrator", is_superuser=True, is_staff=True)


@pytest.fixture
def product(db, admin_user) -> Product:
    """The demo product `rsd` with its policy active (signed by a quality reviewer outside the cast)."""
    product = services.product_create(
        actor=admin_user,
        key="rsd",
        name="Risk Score Dashboard",
        safety_class="B",
        safety_rationale="Clinicians read the score; a wrong score could delay care but a clinician reviews every case.",
        repository_url="https://github.com/acme/rsd",
    )
    author = make_user("polly", "Polly Policy-Author")
    approver = make_user("quentin", "Quentin Quality-Lead")
    roles.role_grant(actor=admin_user, user=author, product=product, role=Role.RELEASE_MANAGER)
    # Who may propose a policy version: quality reviewers and administrators (policy_changes.propose_roles).
    roles.role_grant(actor=admin_user, user=author, product=product, role=Role.QUALITY)
    roles.role_grant(actor=admin_user, user=approver, product=product, role=Role.QUALITY)
    version = services.policy_version_propose(
        product=product, author=author, source=DEFAULT_POLICY_YAML, reason="initial policy"
    )
    services.policy_version_sign(
        policy_version=version,
        signer=approver,
        username="quentin",
        password=PASSWORD,
        seen_sha256=policy_version_sha256(version),
    )
    return product


@pytest.fixture
def other_product(db, admin_user) -> Product:
    return services.product_create(
        actor=admin_user,
        key="lab",
        name="Lab Results Gateway",
        safety_class="C",
        safety_rationale="Routes lab results to clinicians; a lost result could cause serious injury.",
    )


@pytest.fixture
def cast(db, product, admin_user) -> dict[str, User]:
    people = {}
    for username, (full_name, role) in CAST.items():
        people[username] = make_user(username, full_name)
        roles.role_grant(actor=admin_user, user=people[username], product=product, role=role)
    people["olga"] = make_user("olga", "Olga Outsider")  # holds no role anywhere
    return people


@pytest.fixture
def author(cast):
    return cast["alice"]


@pytest.fixture
def release_manager(cast):
    return cast["rory"]


@pytest.fixture
def quality_reviewer(cast):
    return cast["quinn"]


@pytest.fixture
def security_reviewer(cast):
    return cast["sasha"]


@pytest.fixture
def auditor(cast):
    return cast["audrey"]


@pytest.fixture
def outsider(cast):
    return cast["olga"]


@pytest.fixture
def ci_account(db):
    return make_user("ci-rsd", "CI (rsd)", is_service_account=True)


CI_SCOPES = [
    "evidence:write",
    "status:read",
    "deployments:write",
    "snapshots:write",
    "releases:write",
    "requirements:write",
]


def ci_token_for(product: Product, account: User, *, actor: User) -> str:
    """A CI token with every CI scope on one product (the secret, as CI would hold it)."""
    _, secret = token_create(actor=actor, name="ci", user=account, products=[product], scopes=CI_SCOPES)
    return secret


@pytest.fixture
def ci_token(db, product, ci_account, admin_user) -> str:
    return ci_token_for(product, ci_account, actor=admin_user)


@pytest.fixture
def other_product_token(db, other_product, admin_user) -> str:
    return ci_token_for(other_product, make_user("ci-lab", "CI (lab)", is_service_account=True), actor=admin_user)


def client_for(user: User | None = None, *, token: str | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def api():
    return client_for


LOW_RISK = {
    "patient_safety_impact": "none",
    "data_sensitivity": "none",
    "user_impact": "minor",
    "rollback_complexity": "trivial",
}
MEDIUM_RISK = {
    "patient_safety_impact": "indirect",
    "data_sensitivity": "none",
    "user_impact": "none",
    "rollback_complexity": "trivial",
}
HIGH_RISK = {
    "patient_safety_impact": "direct",
    "data_sensitivity": "none",
    "user_impact": "none",
    "rollback_complexity": "trivial",
}
CRITICAL_RISK = {
    "patient_safety_impact": "direct",
    "data_sensitivity": "phi",
    "user_impact": "major",
    "rollback_complexity": "hard",
}


def open_change_request(*, product, requester, answers=MEDIUM_RISK, submit=True, **fields):
    defaults = {
        "title": "Recalibrate the sepsis risk score thresholds",
        "why": "Clinical review found the amber threshold flags too many low-risk patients.",
        "what_changes": "Amber threshold 0.35 → 0.42 in the scoring service configuration.",
        "affected_items": "scoring-service, REQ-017",
        "kind": "configuration",
        "change_type": "normal",
        "verification_plan": "Replay last quarter's anonymised cases; compare flag rates with the clinical panel's labels.",
        "rollback_plan": "Revert the configuration commit and redeploy the previous image digest.",
    }
    defaults.update(fields)
    change_request = services.change_request_create(
        product=product, requester=requester, risk_answers=answers, **defaults
    )
    if submit:
        change_request = services.change_request_submit(change_request=change_request, actor=requester)
    return change_request
