"""The dashboard (home page): panels shaped by roles, counts that match the records, bounded queries, charts."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import releases
from approvals import services as approval_services
from approvals import status as approval_status
from approvals.models import Decision, Promotion
from changecontrol.models import ChangeRequest, Environment
from home import charts, dashboard
from runtime.models import BreakGlassReview, Deployment, DriftFinding, EnvironmentSnapshot
from tests.builders import (
    POLICY_WITHOUT_TRACE_BLOCK,
    activate_policy,
    add_evidence,
    add_full_evidence,
    add_tests,
    make_artifact,
    make_build,
    pass_through,
    rewrite_sealed,
    sign,
)
from tests.conftest import LOW_RISK, MEDIUM_RISK, open_change_request


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    approval_status._local_answers.clear()
    yield


@pytest.fixture
def policy(product):
    return activate_policy(product, POLICY_WITHOUT_TRACE_BLOCK)


@pytest.fixture
def release(product, cast, ci_account, policy):
    build = make_build(product, registered_by=ci_account)
    artifact = make_artifact(build)
    add_full_evidence(artifact)
    change_request = open_change_request(product=product, requester=cast["paula"], answers=LOW_RISK)
    return releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.2.4",
        artifact_digests=[artifact.digest],
        change_request_ids=[change_request.human_id],
    )


@pytest.fixture
def production_promotion(release, cast):
    """A production promotion waiting for a quality reviewer's signature."""
    pass_through(release, actor=cast["rory"])
    promotion = approval_services.promotion_request(release=release, environment_key="production", actor=cast["rory"])
    promotion.refresh_from_db()
    assert promotion.state == Promotion.State.AWAITING_APPROVAL
    return promotion


@pytest.fixture
def blocked_promotion(product, cast, ci_account, policy):
    """An integration promotion whose failing tests block it, with the status answer stored as a Decision."""
    build = make_build(product, registered_by=ci_account)
    artifact = make_artifact(build, name="rsd-worker")
    add_tests(artifact, passed=8, failed=2)
    change_request = open_change_request(product=product, requester=cast["paula"], answers=LOW_RISK)
    release = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.3.0",
        artifact_digests=[artifact.digest],
        change_request_ids=[change_request.human_id],
    )
    promotion = approval_services.promotion_request(release=release, environment_key="integration", actor=cast["rory"])
    answer = approval_status.status_answer(artifact=artifact, environment_key="integration")
    assert answer["decision"] == "blocked"
    promotion.refresh_from_db()
    return promotion


def home(user) -> tuple[str, dict]:
    client = Client()
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode(), response.context


def environment(product, key="production") -> Environment:
    return Environment.objects.get(product=product, key=key)


def record_deployment(product, artifact, *, deployer, authorised=True, kind="normal", key="production", **fields):
    return Deployment.objects.create(
        product=product,
        environment=environment(product, key),
        artifact=artifact,
        digest=artifact.digest,
        deployer=deployer,
        kind=kind,
        authorised=authorised,
        justification="Sepsis score outage: hotfix without waiting for the pipeline" if kind == "break_glass" else "",
        reasons=[] if authorised else ["gate tests fail: 2 test(s) failed"],
        **fields,
    )


# ---------------------------------------------------------------- who sees what


def test_outsider_sees_no_panel_and_is_told_to_ask_for_a_role(outsider, production_promotion):
    text, context = home(outsider)
    assert context["dashboard"].panels == []
    assert production_promotion.human_id not in text
    assert "You hold no role on any product yet" in text


def test_quality_reviewer_sees_pending_approvals_first_with_a_link_to_the_promotion(
    quality_reviewer, production_promotion
):
    text, context = home(quality_reviewer)
    board = context["dashboard"]
    assert board.focus[0].key == "pending_approvals"
    panel = board.panel("pending_approvals")
    assert panel.count == 1
    assert panel.rows[0]["human_id"] == production_promotion.human_id
    assert f'href="/promotions/{production_promotion.human_id}"' in text


def test_pending_approvals_include_change_requests_but_never_my_own(product, quality_reviewer, release_manager):
    submitted = open_change_request(product=product, requester=release_manager, answers=MEDIUM_RISK)
    reviewer_panel = dashboard.pending_approvals(user=quality_reviewer)
    assert [row["human_id"] for row in reviewer_panel.rows] == [submitted.human_id]
    assert dashboard.pending_approvals(user=release_manager).count == 0
    text, _ = home(release_manager)
    assert "Nothing is waiting for your signature." in text


def test_each_role_sees_its_own_panels_first(cast):
    def first_panels(username, n):
        return [panel.key for panel in dashboard.dashboard_for(cast[username]).focus[:n]]

    assert first_panels("quinn", 1) == ["pending_approvals"]
    assert first_panels("rory", 2) == ["blocked_promotions", "ageing_change_requests"]
    assert first_panels("sam", 2) == ["drift_findings", "break_glass_reviews"]
    assert first_panels("audrey", 1) == ["unauthorised_deployments"]
    # Every panel is still on the page, the rest under "Across your products".
    board = dashboard.dashboard_for(cast["audrey"])
    assert sorted(p.key for p in board.panels) == sorted(dashboard.PANEL_ORDER)


def test_records_of_a_product_i_hold_no_role_on_are_not_counted(cast, other_product, admin_user, ci_account):
    build = make_build(other_product, registered_by=ci_account)
    artifact = make_artifact(build, name="lab-gateway")
    add_evidence(artifact, "junit", state="failed")
    record_deployment(other_product, artifact, deployer=ci_account, authorised=False, key="production")
    for username in ("quinn", "audrey", "sam"):
        board = dashboard.dashboard_for(cast[username])
        assert board.panel("failed_evidence").count == 0
        assert board.panel("unauthorised_deployments").count == 0


# ---------------------------------------------------------------- panels


def test_blocked_promotion_shows_its_failing_blocking_gates_from_the_latest_decision(
    release_manager, blocked_promotion
):
    text, context = home(release_manager)
    panel = context["dashboard"].panel("blocked_promotions")
    assert panel.count == 1
    row = panel.rows[0]
    assert row["promotion"] == blocked_promotion
    assert [(g["id"], g["status"]) for g in row["failing"]] == [("unit-tests", "fail")]
    assert "2 test(s) failed" in row["failing"][0]["detail"]
    assert f'href="/promotions/{blocked_promotion.human_id}"' in text and "2 test(s) failed" in text


def test_a_newer_decision_that_is_not_blocked_takes_the_promotion_off_the_blocked_panel(
    release_manager, blocked_promotion
):
    stored = Decision.objects.filter(promotion=blocked_promotion).latest("id")
    Decision.objects.create(
        artifact=stored.artifact,
        environment=stored.environment,
        promotion=blocked_promotion,
        decision="pending",
        gates=[],
        inputs={},
        inputs_sha256="0" * 64,
        answer_sha256="1" * 64,
    )
    assert dashboard.blocked_promotions(product_ids=[blocked_promotion.release.product_id]).count == 0


def test_failed_and_rejected_evidence_of_the_last_30_days_is_counted_newest_first(quality_reviewer, artifact_for):
    artifact = artifact_for()
    add_evidence(artifact, "junit", state="parsed")
    failed = add_evidence(artifact, "cobertura", state="failed", name="coverage.xml")
    rejected = add_evidence(artifact, "sarif", state="rejected", name="semgrep.sarif")
    old = add_evidence(artifact, "lcov", state="failed")
    rewrite_sealed(type(old).objects.filter(pk=old.pk), uploaded_at=timezone.now() - timedelta(days=31))
    type(failed).objects.filter(pk=failed.pk).update(error="line 3: not well-formed (invalid token)")
    text, context = home(quality_reviewer)
    panel = context["dashboard"].panel("failed_evidence")
    assert panel.count == 2
    assert [e.pk for e in panel.rows] == [rejected.pk, failed.pk]
    assert "line 3: not well-formed (invalid token)" in text
    assert f'href="/evidence/{failed.human_id}"' in text


@pytest.fixture
def artifact_for(product, ci_account, cast):
    def make():
        return make_artifact(make_build(product, registered_by=ci_account))

    return make


def test_ageing_change_requests_are_submitted_more_than_seven_days_ago_and_undecided(product, cast, release_manager):
    fresh = open_change_request(product=product, requester=cast["rory"], title="Fresh one")
    ageing = open_change_request(product=product, requester=cast["rory"], title="Old and forgotten")
    draft = open_change_request(product=product, requester=cast["rory"], title="Old draft", submit=False)
    week_ago = timezone.now() - timedelta(days=9)
    ChangeRequest.objects.filter(pk__in=[ageing.pk, draft.pk]).update(submitted_at=week_ago, created_at=week_ago)
    text, context = home(release_manager)
    panel = context["dashboard"].panel("ageing_change_requests")
    assert panel.count == 1
    assert panel.rows[0]["change_request"].pk == ageing.pk and panel.rows[0]["age_days"] == 9
    assert "Old and forgotten" in text and "9 days" in text
    assert fresh.pk not in [row["change_request"].pk for row in panel.rows]


def test_overdue_break_glass_review_is_shown_in_red_before_the_one_still_due(product, cast, ci_account, artifact_for):
    now = timezone.now()
    reviews = []
    for due in (now + timedelta(hours=20), now - timedelta(hours=5)):
        deployment = record_deployment(product, artifact_for(), deployer=cast["sam"], kind="break_glass")
        reviews.append(BreakGlassReview.objects.create(deployment=deployment, product=product, due_at=due))
    text, context = home(cast["sam"])
    panel = context["dashboard"].panel("break_glass_reviews")
    assert panel.count == 2 and panel.extra["overdue"] == 1 and panel.tone == "error"
    assert [row["review"].pk for row in panel.rows] == [reviews[1].pk, reviews[0].pk]
    assert [row["overdue"] for row in panel.rows] == [True, False]
    assert text.count('class="row-overdue"') == 1 and "Overdue by" in text and "1 overdue" in text


def test_open_drift_findings_are_counted_and_resolved_ones_are_not(product, cast):
    snapshot = EnvironmentSnapshot.objects.create(
        product=product, environment=environment(product), reported_by=cast["sam"], artifacts=[], sha256="0" * 64
    )
    open_one = DriftFinding.objects.create(
        product=product,
        environment=environment(product),
        digest="sha256:" + "a" * 64,
        name="rsd-api",
        kind="unapproved",
        opened_by=snapshot,
    )
    DriftFinding.objects.create(
        product=product,
        environment=environment(product),
        digest="sha256:" + "b" * 64,
        kind="missing",
        state="resolved",
        resolved_at=timezone.now(),
        opened_by=snapshot,
    )
    text, context = home(cast["sam"])
    panel = context["dashboard"].panel("drift_findings")
    assert panel.count == 1 and panel.rows[0]["finding"] == open_one
    assert open_one.human_id in text and "Running but never approved here" in text


def test_unauthorised_deployments_are_what_an_auditor_sees_first(product, cast, ci_account, artifact_for):
    record_deployment(product, artifact_for(), deployer=ci_account, authorised=True)
    bad = record_deployment(product, artifact_for(), deployer=ci_account, authorised=False)
    text, context = home(cast["audrey"])
    board = context["dashboard"]
    assert board.focus[0].key == "unauthorised_deployments"
    assert board.panel("unauthorised_deployments").count == 1
    assert bad.human_id in text and "gate tests fail: 2 test(s) failed" in text
    assert f'href="/deployments/{bad.human_id}"' in text
    assert 'href="/deployments/?authorised=false"' in text


def test_summary_tiles_show_each_panels_count(product, cast, artifact_for):
    artifact = artifact_for()
    for kind in ("junit", "sarif", "cyclonedx"):
        add_evidence(artifact, kind, state="failed")
    text, _ = home(cast["quinn"])
    assert 'data-panel="failed_evidence"' in text
    assert '<span class="dash-count" data-count="3">3</span>' in text


# ---------------------------------------------------------------- the page stays fast


def _home_queries(user) -> int:
    client = Client()
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    if os.environ.get("DASHBOARD_SHOW_QUERIES"):
        print("\n".join(q["sql"][:160] for q in captured.captured_queries))
    return len(captured)


def test_home_page_queries_stay_bounded_however_much_there_is_to_show(
    product, cast, ci_account, artifact_for, blocked_promotion, production_promotion
):
    def add_a_batch():
        artifact = artifact_for()
        for kind in ("junit", "sarif", "cyclonedx", "grype"):
            add_evidence(artifact, kind, state="failed")
        for _ in range(3):
            change_request = open_change_request(product=product, requester=cast["rory"], answers=MEDIUM_RISK)
            ChangeRequest.objects.filter(pk=change_request.pk).update(submitted_at=timezone.now() - timedelta(days=10))
            deployment = record_deployment(
                product, artifact, deployer=cast["sam"], kind="break_glass", authorised=False
            )
            BreakGlassReview.objects.create(deployment=deployment, product=product, due_at=timezone.now())

    add_a_batch()
    counts = {}
    for username in ("quinn", "rory", "audrey"):
        counts[username] = _home_queries(cast[username])
    for _ in range(4):
        add_a_batch()
    for username in ("quinn", "rory", "audrey"):
        assert _home_queries(cast[username]) == counts[username], username
        assert counts[username] <= 35, counts
    board = dashboard.dashboard_for(cast["quinn"])
    assert board.panel("failed_evidence").count == 20
    assert board.panel("pending_approvals").count == 15 + 1  # 15 medium CRs and the production promotion
    assert len(board.panel("pending_approvals").rows) == dashboard.ROW_LIMIT


# ---------------------------------------------------------------- charts


def test_lead_time_runs_from_cr_approval_to_the_production_promotion_until_deployments_exist(
    quality_reviewer, production_promotion
):
    change_request = production_promotion.release.change_requests.get()
    sign(production_promotion, quality_reviewer)
    production_promotion.refresh_from_db()
    assert production_promotion.state == "approved"
    ChangeRequest.objects.filter(pk=change_request.pk).update(
        decided_at=production_promotion.decided_at - timedelta(days=3)
    )
    series = charts.lead_time_series(product_ids=[production_promotion.release.product_id])
    assert series.total == 1 and series.unit == "days" and series.overall == 3.0
    assert series.source == "production promotion approved or deployed"
    assert [w.value for w in series.weeks if w.value is not None] == [3.0]
    assert 13 <= len(series.weeks) <= 14


def test_lead_time_counts_the_first_production_deployment_once_deployments_are_recorded(
    product, cast, quality_reviewer, production_promotion
):
    release = production_promotion.release
    change_request = release.change_requests.get()
    artifact = release.artifacts.get()
    now = timezone.now()
    ChangeRequest.objects.filter(pk=change_request.pk).update(decided_at=now - timedelta(hours=30))
    record_deployment(product, artifact, deployer=cast["sam"], release=release, deployed_at=now - timedelta(hours=20))
    record_deployment(product, artifact, deployer=cast["sam"], release=release, deployed_at=now - timedelta(hours=2))
    series = charts.lead_time_series(product_ids=[product.pk])
    assert series.source == "first production deployment"
    assert series.unit == "hours" and series.overall == 10.0 and series.total == 1


def test_lead_time_ignores_changes_that_reached_production_before_the_90_days(product, cast, production_promotion):
    release = production_promotion.release
    long_ago = timezone.now() - timedelta(days=120)
    ChangeRequest.objects.filter(releases=release).update(decided_at=long_ago - timedelta(days=1))
    record_deployment(product, release.artifacts.get(), deployer=cast["sam"], release=release, deployed_at=long_ago)
    record_deployment(product, release.artifacts.get(), deployer=cast["sam"], release=release)
    assert charts.lead_time_series(product_ids=[product.pk]).total == 0


def test_rejection_rate_is_the_weekly_share_of_decided_promotions_that_were_rejected(
    product, cast, production_promotion
):
    sign(production_promotion, cast["quinn"], meaning="rejected", comment="The release notes omit REQ-017.")
    series = charts.rejection_rate_series(product_ids=[product.pk])
    # integration and staging were approved on their gates, production was rejected: 1 of 3.
    assert series.total == 3 and series.overall == 33.3
    assert [w.detail for w in series.weeks if w.n] == ["1 of 3 rejected"]


def test_charts_are_accessible_svg_with_title_desc_axis_labels_and_a_data_table(quality_reviewer, production_promotion):
    sign(production_promotion, quality_reviewer)
    text, context = home(quality_reviewer)
    lead, rate = context["charts"]
    for chart in (lead, rate):
        root = ET.fromstring(str(chart.svg))
        ns = "{http://www.w3.org/2000/svg}"
        assert root.get("role") == "img"
        assert root.find(f"{ns}title").text and root.find(f"{ns}desc").text == chart.summary
        labels = [t.text for t in root.iter(f"{ns}text") if t.get("class") == "chart-axis-label"]
        assert labels[0] == "Week starting (UTC)" and len(labels) == 2
    assert "0% of 3 promotion decision(s)" in rate.summary
    assert 'data-testid="chart-rejection-rate-table"' in text and "Show the figures as a table" in text
    assert "<svg" in text and 'aria-labelledby="chart-lead-time-title chart-lead-time-desc"' in text


def test_charts_say_so_when_there_is_no_data(product, cast):
    lead, rate = charts.dashboard_charts(product_ids=[product.pk])
    assert lead.summary == "No approved change reached production in the last 90 days."
    assert rate.summary == "No promotion was decided in the last 90 days."
    assert "No data in the last 90 days" in str(lead.svg)
