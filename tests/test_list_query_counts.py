"""Every list — API endpoint or page — costs the same number of SQL queries however many rows it shows.

Each case fills the list with a first batch of rows, counts the queries of one request, adds a second batch
(with the signatures, approvals, promotions and reviews the rows show), counts again and asserts the count did
not grow. A per-row query (an N+1) shows up as a second count larger than the first.
Set LIST_QUERIES_SHOW=1 to print each list's counts and the SQL of the larger request.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import services as alerts_services
from approvals import releases
from approvals import services as approvals_services
from approvals import status as approval_status
from approvals.models import Promotion
from changecontrol import roles
from changecontrol import services as cc_services
from changecontrol.models import Product, Role, User
from changecontrol.policy import DEFAULT_POLICY_YAML
from evidence import services as evidence_services
from evidence.models import Artifact
from tests.builders import (
    POLICY_WITHOUT_TRACE_BLOCK,
    activate_policy,
    add_full_evidence,
    add_tests,
    make_artifact,
    make_build,
    pass_through,
)
from tests.conftest import (
    HIGH_RISK,
    LOW_RISK,
    MEDIUM_RISK,
    PASSWORD,
    open_change_request,
    policy_version_sha256,
    sign_change_request,
)
from tests.runtime.helpers import approved_for_production, deploy, new_release
from tests.traceability.factories import item, link, results

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)
SHARED_PREFIX = "sha256:c0ffee0ddba11"
WHY = "Scores not shown after a certificate rotation; the fix could not wait for the pipeline."


@pytest.fixture(autouse=True)
def _fresh_status_answers():
    # Status answers are cached by their inputs; a warm cache from another test would hide this test's queries.
    cache.clear()
    approval_status._local_answers.clear()


@dataclass
class World:
    """The product, the cast and CI, plus whatever a case set up to list (an artifact, a build, …)."""

    product: Product
    cast: dict[str, User]
    admin: User
    ci_account: User
    ci_token: str
    api: Callable
    subject: dict = field(default_factory=dict)

    def client(self, who: str):
        if who == "ci":
            return self.api(token=self.ci_token)
        return self.api(self.admin if who == "ada" else self.cast[who])


@pytest.fixture
def world(product, cast, admin_user, ci_account, ci_token, api) -> World:
    activate_policy(product, POLICY_WITHOUT_TRACE_BLOCK)
    return World(product, cast, admin_user, ci_account, ci_token, api)


# ---------------------------------------------------------------- rows to list


def signed_change_requests(world: World) -> None:
    """A medium CR approved by quality, and a high one whose quality approval still waits for security's."""
    for answers in (MEDIUM_RISK, HIGH_RISK):
        change_request = open_change_request(product=world.product, requester=world.cast["rory"], answers=answers)
        sign_change_request(change_request, world.cast["quinn"])


def _release(world: World, environments=("integration",)):
    """A release of a fully evidenced artifact with an approved CR, passed through `environments`."""
    n = next(_numbers)
    change_request = open_change_request(product=world.product, requester=world.cast["paula"], answers=LOW_RISK)
    # Each release ships a differently named artifact, so "what runs now" lists one row per release.
    release, artifact = new_release(
        world.product, world.cast, world.ci_account, f"7.{n}.0", change_request, name=f"rsd-service-{n}"
    )
    pass_through(release, actor=world.cast["rory"], environments=environments)
    return release, artifact


def promoted_releases(world: World) -> None:
    _release(world)
    approved_for_production(_release(world, environments=())[0], world.cast)


def awaiting_production(world: World):
    release, artifact = _release(world, environments=("integration", "staging"))
    approvals_services.promotion_request(release=release, environment_key="production", actor=world.cast["rory"])
    return artifact


def promotions_awaiting_approval(world: World) -> None:
    awaiting_production(world)
    awaiting_production(world)


def deployments(world: World) -> None:
    """An authorised deployment, an unauthorised one, and a break-glass one whose review quality signed."""
    release, artifact = _release(world, environments=())
    approved_for_production(release, world.cast)
    assert deploy(world.api, world.ci_token, artifact.digest).json()["authorised"] is True
    stray = make_artifact(make_build(world.product, registered_by=world.ci_account))
    assert deploy(world.api, world.ci_token, stray.digest).json()["authorised"] is False
    glass = world.api(world.cast["sam"]).post(
        "/api/v1/deployments",
        {"artifact": stray.digest, "environment": "production", "kind": "break_glass", "justification": WHY},
        format="json",
    )
    assert glass.status_code == 201, glass.json()
    reviewer = world.api(world.cast["quinn"])
    seen = reviewer.get(f"/api/v1/deployments/{glass.json()['id']}").json()["review"]["content_sha256"]
    review = reviewer.post(
        f"/api/v1/deployments/{glass.json()['id']}/review",
        {
            "username": "quinn",
            "password": PASSWORD,
            "findings": "Justified: the certificate was the only change.",
            "content_sha256": seen,
        },
        format="json",
    )
    assert review.status_code == 201, review.json()


def break_glass_deployments(world: World) -> None:
    """What `deployments` adds, and two more break-glass deployments whose reviews are still due."""
    deployments(world)
    for _ in range(2):
        stray = make_artifact(make_build(world.product, registered_by=world.ci_account))
        glass = world.api(world.cast["sam"]).post(
            "/api/v1/deployments",
            {"artifact": stray.digest, "environment": "production", "kind": "break_glass", "justification": WHY},
            format="json",
        )
        assert glass.status_code == 201, glass.json()


def audit_events(world: World) -> None:
    open_change_request(product=world.product, requester=world.cast["rory"], answers=MEDIUM_RISK)


def products(world: World) -> None:
    """Two more products Quinn works on, each with its active policy and an open change request."""
    for _ in range(2):
        key = f"p{next(_numbers)}"
        product = cc_services.product_create(
            actor=world.admin, key=key, name=f"Product {key}", safety_class="B", safety_rationale="Advisory only."
        )
        for username, role in (("polly", Role.QUALITY), ("quentin", Role.QUALITY)):
            roles.role_grant(actor=world.admin, user=User.objects.get(username=username), product=product, role=role)
        for username, role in (("quinn", Role.QUALITY), ("rory", Role.RELEASE_MANAGER)):
            roles.role_grant(actor=world.admin, user=world.cast[username], product=product, role=role)
        version = cc_services.policy_version_propose(
            product=product,
            author=User.objects.get(username="polly"),
            source=DEFAULT_POLICY_YAML.replace("\npolicy: rsd\n", f"\npolicy: {key}\n"),
            reason="initial policy",
        )
        cc_services.policy_version_sign(
            policy_version=version,
            signer=User.objects.get(username="quentin"),
            username="quentin",
            password=PASSWORD,
            seen_sha256=policy_version_sha256(version),
        )
        open_change_request(product=product, requester=world.cast["rory"], answers=MEDIUM_RISK)


def policy_versions(world: World) -> None:
    for _ in range(2):
        activate_policy(world.product, POLICY_WITHOUT_TRACE_BLOCK + f"# revision {next(_numbers)}\n")


def signer_keys(world: World) -> None:
    for _ in range(2):
        pem = (
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        evidence_services.signer_key_register(
            product=world.product, name=f"signer {next(_numbers)}", public_key_pem=pem, actor=world.admin
        )


def traced_items(world: World) -> None:
    """A risk control implemented by two requirements, one tested."""
    alice, n = world.cast["alice"], next(_numbers)
    control = item(world.product, alice, f"RC-{n}")
    tested, untested = item(world.product, alice, f"REQ-{n}01"), item(world.product, alice, f"REQ-{n}02")
    link(control, tested, "implements", alice)
    link(control, untested, "implements", alice)
    built = make_artifact(make_build(world.product, registered_by=world.ci_account))
    results(built, alice, [(f"test_{n}", "passed", [tested.identifier])])


def decisions(world: World) -> None:
    """The status answer for the watched artifact changes (one more failing test each time); re-judging its promotion,
    as a report that finished processing does, stores each new answer."""
    promotion = Promotion.objects.get(release__artifacts=world.subject["artifact"], environment__key="production")
    for _ in range(2):
        add_tests(world.subject["artifact"], passed=1, failed=1)
        approvals_services.promotion_refresh(promotion=promotion, actor=world.ci_account)


def watched_artifact(world: World) -> dict:
    artifact = awaiting_production(world)
    return {"artifact": artifact, "digest": artifact.digest}


def evidence_on_artifact(world: World) -> None:
    """Signature, provenance, tests, SBOM and vulnerability scan: every list on the artifact's page grows."""
    add_full_evidence(world.subject["artifact"])


def built_artifact(world: World) -> dict:
    build = make_build(world.product, registered_by=world.ci_account)
    artifact = make_artifact(build)
    return {"artifact": artifact, "digest": artifact.digest, "build": build, "build_id": build.human_id}


def artifacts_of_build(world: World) -> None:
    for _ in range(2):
        make_artifact(world.subject["build"], name=f"rsd-worker-{next(_numbers)}")


def artifacts_sharing_a_prefix(world: World) -> None:
    """Two artifacts whose digests start alike, each shipped by two releases."""
    for _ in range(2):
        build = make_build(world.product, registered_by=world.ci_account)
        artifact = Artifact.objects.create(
            product=world.product,
            build=build,
            name=f"rsd-api-{next(_numbers)}",
            digest=SHARED_PREFIX + hashlib.sha256(os.urandom(8)).hexdigest()[len(SHARED_PREFIX) - 7 :],
            registered_by=world.ci_account,
        )
        for _ in range(2):
            releases.release_create(
                product=world.product,
                actor=world.cast["rory"],
                version=f"8.{next(_numbers)}.0",
                artifact_digests=[artifact.digest],
            )


def unfrozen_release(world: World) -> dict:
    change_request = open_change_request(product=world.product, requester=world.cast["paula"], answers=LOW_RISK)
    release, _ = new_release(world.product, world.cast, world.ci_account, f"9.{next(_numbers)}.0", change_request)
    return {"release": release, "version": release.version}


def release_contents(world: World) -> None:
    """Two more artifacts, each from its own build, and two more approved CRs in the (not yet frozen) release."""
    release = world.subject["release"]
    digests = list(release.artifacts.values_list("digest", flat=True))
    change_requests = [cr.human_id for cr in release.change_requests.all()]
    for _ in range(2):
        build = make_build(world.product, registered_by=world.ci_account)
        digests.append(make_artifact(build, name=f"rsd-part-{next(_numbers)}").digest)
        change_request = open_change_request(product=world.product, requester=world.cast["paula"], answers=LOW_RISK)
        change_requests.append(change_request.human_id)
    releases.release_update(
        release=release, actor=world.cast["rory"], artifact_digests=digests, change_request_ids=change_requests
    )


def alert_deliveries(world: World) -> None:
    """One more e-mail subscription to drift alerts, and two drift alerts, each delivered to every subscriber."""
    alerts_services.alert_subscription_create(
        actor=world.admin,
        product=world.product,
        event_kind="drift",
        channel="email",
        target=f"sre-{next(_numbers)}@example.test",
    )
    for _ in range(2):
        alert = alerts_services.alert_raise(
            product=world.product, event_kind="drift", subject=f"Drift {next(_numbers)} in production", body={}
        )
        for delivery in alert.deliveries.all():
            alerts_services.delivery_attempt(delivery_id=delivery.pk)


def drift(world: World) -> None:
    """A snapshot reporting what was never built here: each unknown digest opens a finding."""
    running = world.subject.setdefault("running", [])
    for _ in range(2):
        running.append({"name": "rsd-api", "digest": "sha256:" + hashlib.sha256(os.urandom(8)).hexdigest()})
    response = world.client("ci").put(
        f"/api/v1/products/{world.product.key}/environments/production/snapshot", {"artifacts": running}, format="json"
    )
    assert response.status_code == 200, response.json()


# ---------------------------------------------------------------- how rows show


def json_rows(response) -> int:
    return len(response.json())


def csv_rows(response) -> int:
    return len(response.content.decode().splitlines()) - 1


def key_rows(key: str) -> Callable:
    return lambda response: len(response.json()[key])


def html_rows(marker: str) -> Callable:
    return lambda response: response.content.decode().count(marker)


@dataclass(frozen=True)
class ListCase:
    """One list: who asks, where (formatted with `today` and what `setup` returned), how rows grow and show."""

    who: str
    path: str
    grow: Callable[[World], None]
    rows: Callable
    setup: Callable[[World], dict] | None = None


API_CASES = {
    "products": ListCase("quinn", "/api/v1/products", products, json_rows),
    "change-requests": ListCase("rory", "/api/v1/products/rsd/change-requests", signed_change_requests, json_rows),
    "audit-events": ListCase("audrey", "/api/v1/audit-events?action=change_request.", audit_events, json_rows),
    "audit-events-csv": ListCase(
        "audrey", "/api/v1/audit-events?action=change_request.&format=csv", audit_events, csv_rows
    ),
    "releases": ListCase("rory", "/api/v1/products/rsd/releases", promoted_releases, json_rows),
    "release-contents": ListCase(
        "rory", "/api/v1/releases/rsd/{version}", release_contents, key_rows("artifacts"), setup=unfrozen_release
    ),
    "pending-approvals": ListCase("quinn", "/api/v1/approvals/pending", promotions_awaiting_approval, json_rows),
    "status-history": ListCase(
        "ci",
        "/api/v1/status/history?artifact={digest}&environment=production",
        decisions,
        json_rows,
        setup=watched_artifact,
    ),
    "deployments": ListCase("audrey", "/api/v1/deployments", deployments, json_rows),
    "deployments-csv": ListCase("audrey", "/api/v1/deployments.csv", deployments, csv_rows),
    "signer-keys": ListCase("ci", "/api/v1/products/rsd/signer-keys", signer_keys, json_rows),
    "items": ListCase("ci", "/api/v1/products/rsd/items", traced_items, json_rows),
    "items-export-csv": ListCase("ci", "/api/v1/products/rsd/items/export.csv", traced_items, csv_rows),
    "items-export-json": ListCase("ci", "/api/v1/products/rsd/items/export.json", traced_items, key_rows("items")),
    "trace-matrix": ListCase("ci", "/api/v1/products/rsd/trace-matrix", traced_items, key_rows("rows")),
    "baselines": ListCase("ci", "/api/v1/products/rsd/baselines", promoted_releases, json_rows),
    "artifact-evidence": ListCase(
        "ci", "/api/v1/artifacts/{digest}", evidence_on_artifact, key_rows("evidence"), setup=built_artifact
    ),
    "build-artifacts": ListCase(
        "ci", "/api/v1/builds/{build_id}", artifacts_of_build, key_rows("artifacts"), setup=built_artifact
    ),
    "population-report": ListCase(
        "audrey", "/api/v1/population-report?from={today}&to={today}", deployments, key_rows("rows")
    ),
    "audit-export": ListCase("audrey", "/api/v1/audit-events/export?since={today}&format=csv", audit_events, csv_rows),
}

PAGE_CASES = {
    "products": ListCase("quinn", "/products/", products, html_rows('/change-requests/"><strong>')),
    "change-requests": ListCase(
        "rory", "/change-requests/", signed_change_requests, html_rows('<td><a href="/change-requests/CR-')
    ),
    "product-change-requests": ListCase(
        "rory",
        "/products/rsd/change-requests/",
        signed_change_requests,
        html_rows('<td><a href="/change-requests/CR-'),
    ),
    "audit-trail": ListCase("audrey", "/audit/?action=change_request.", audit_events, html_rows("change_request.")),
    "pending-approvals": ListCase(
        "quinn", "/approvals/", promotions_awaiting_approval, html_rows('<td><a href="/promotions/PRM-')
    ),
    "releases": ListCase(
        "rory", "/products/rsd/releases", promoted_releases, html_rows('<td><a href="/products/rsd/releases/')
    ),
    "release": ListCase(
        "rory", "/products/rsd/releases/{version}", release_contents, html_rows("rsd-part-"), setup=unfrozen_release
    ),
    "auditor-release": ListCase(
        "audrey", "/auditor/releases/rsd/{version}", release_contents, html_rows("rsd-part-"), setup=unfrozen_release
    ),
    "policy-history": ListCase("quinn", "/products/rsd/policy", policy_versions, html_rows("<td>v")),
    "deployments": ListCase("audrey", "/deployments/", deployments, html_rows('<td><a href="/deployments/DEP-')),
    "break-glass": ListCase("quinn", "/break-glass/", break_glass_deployments, html_rows("<tr data-review=")),
    "drift": ListCase("sam", "/products/rsd/drift?state=all", drift, html_rows("<td>DRIFT-")),
    "items": ListCase("alice", "/products/rsd/items", traced_items, html_rows('<tr><td><a href="/products/rsd/items/')),
    "trace-matrix": ListCase("alice", "/products/rsd/trace-matrix", traced_items, html_rows("REQ-")),
    "build": ListCase(
        "alice", "/builds/{build_id}", artifacts_of_build, html_rows("rsd-worker-"), setup=built_artifact
    ),
    "artifact": ListCase("alice", "/artifacts/{digest}", evidence_on_artifact, html_rows("EV-"), setup=built_artifact),
    "auditor-search-by-day": ListCase("audrey", "/auditor/?q={today}", deployments, html_rows("DEP-")),
    "auditor-search-by-digest": ListCase(
        "audrey", "/auditor/?q=" + SHARED_PREFIX, artifacts_sharing_a_prefix, html_rows("artifact(s)")
    ),
    "auditor-population": ListCase(
        "audrey", "/auditor/population?from={today}&to={today}", deployments, html_rows("DEP-")
    ),
    "alert-deliveries": ListCase(
        "audrey", "/products/rsd/alerts/deliveries/", alert_deliveries, html_rows("in production<br>")
    ),
    "alert-subscriptions": ListCase("ada", "/products/rsd/alerts/", alert_deliveries, html_rows("@example.test</")),
}


def _measure(client, path: str, rows: Callable) -> tuple[int, int, list[str]]:
    client.get(path)  # warm: per-process caches (content types, parsed policies) are not a per-row cost
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return len(captured), rows(response), [q["sql"] for q in captured.captured_queries]


def assert_queries_do_not_grow(world: World, name: str, case: ListCase) -> None:
    if case.setup is not None:
        world.subject = case.setup(world)
    # Deployments and audit events are dated in UTC.
    path = case.path.format(today=timezone.now().date().isoformat(), **world.subject)
    client = world.client(case.who)
    case.grow(world)
    small, small_rows, _ = _measure(client, path, case.rows)
    case.grow(world)
    large, large_rows, sql = _measure(client, path, case.rows)
    if os.environ.get("LIST_QUERIES_SHOW"):
        print(f"\n{name}: {small} queries for {small_rows} rows, {large} for {large_rows}")
        print("\n".join(q[:200] for q in sql))
    assert large_rows > small_rows, f"{path}: the second batch of rows did not show, so the counts prove nothing"
    assert large <= small, f"{path}: {small} queries for {small_rows} rows but {large} for {large_rows}"


@pytest.mark.parametrize("name", list(API_CASES))
def test_list_api_costs_the_same_queries_whatever_the_row_count(world, name):
    assert_queries_do_not_grow(world, name, API_CASES[name])


@pytest.mark.parametrize("name", list(PAGE_CASES))
def test_list_page_costs_the_same_queries_whatever_the_row_count(world, name):
    assert_queries_do_not_grow(world, name, PAGE_CASES[name])
