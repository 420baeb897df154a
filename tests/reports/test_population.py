"""The population report (issue 7, item 4): it matches the deployments in the database, exceptions first, complete."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from pypdf import PdfReader

from approvals import releases
from approvals import status as approval_status
from reports.population import POPULATION_QUERY_VERSION, population_csv, population_pdf, population_report
from runtime.deployments import deployment_record
from runtime.models import Deployment
from tests.builders import (
    POLICY_WITHOUT_TRACE_BLOCK,
    activate_policy,
    add_full_evidence,
    make_artifact,
    make_build,
    rewrite_sealed,
)
from tests.conftest import LOW_RISK, open_change_request
from tests.runtime.helpers import approved_for_production

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_status_answers():
    cache.clear()
    approval_status._local_answers.clear()


@pytest.fixture
def deployments(product, cast, ci_account):
    """Production: one approved release deployed, one unknown digest, one break-glass; plus staging and a stale one."""
    activate_policy(product, POLICY_WITHOUT_TRACE_BLOCK)
    production = product.environments.get(key="production")
    staging = product.environments.get(key="staging")
    change_request = open_change_request(product=product, requester=cast["paula"], answers=LOW_RISK)
    artifact = make_artifact(make_build(product, registered_by=ci_account))
    add_full_evidence(artifact)
    release = releases.release_create(
        product=product,
        actor=cast["rory"],
        version="7.2.4",
        artifact_digests=[artifact.digest],
        change_request_ids=[change_request.human_id],
    )
    approved_for_production(release, cast)
    stray = make_artifact(make_build(product, registered_by=ci_account), name="hotfix")
    made = {
        "stale": deployment_record(artifact=artifact, environment=production, deployer=ci_account),
        "staging": deployment_record(artifact=artifact, environment=staging, deployer=ci_account),
        "authorised": deployment_record(artifact=artifact, environment=production, deployer=ci_account),
        "unauthorised": deployment_record(artifact=stray, environment=production, deployer=ci_account),
        "break_glass": deployment_record(
            artifact=stray,
            environment=production,
            deployer=cast["sam"],
            kind="break_glass",
            justification="Scoring outage: the pipeline was down and clinicians saw no scores.",
        ),
    }
    # A deployment recorded 40 days ago falls outside the period (test data: the service stamps server time).
    rewrite_sealed(Deployment.objects.filter(pk=made["stale"].pk), deployed_at=timezone.now() - timedelta(days=40))
    return made


def _report(user, **kwargs):
    today = timezone.now().date()
    return population_report(user=user, start=today - timedelta(days=7), end=today, **kwargs)


def test_report_matches_the_production_deployments_in_the_database(deployments, auditor):
    report = _report(auditor)
    since = timezone.now() - timedelta(days=8)
    expected = set(
        Deployment.objects.filter(environment__key="production", deployed_at__gte=since).values_list("pk", flat=True)
    )
    assert {row["deployment"] for row in report["rows"]} == {f"DEP-{pk}" for pk in expected}
    assert deployments["staging"].human_id not in {row["deployment"] for row in report["rows"]}
    assert deployments["stale"].human_id not in {row["deployment"] for row in report["rows"]}
    assert report["counts"] == {"rows": 3, "exceptions": 2, "unauthorised": 2, "emergency": 1}


def test_exceptions_come_first_and_the_clean_deployment_last(deployments, auditor):
    rows = _report(auditor)["rows"]
    assert [bool(r["exceptions"]) for r in rows] == [True, True, False]
    assert rows[-1]["deployment"] == deployments["authorised"].human_id
    by_id = {r["deployment"]: r for r in rows}
    assert "unauthorised" in by_id[deployments["unauthorised"].human_id]["exceptions"]
    assert "no release" in by_id[deployments["unauthorised"].human_id]["exceptions"]
    glass = by_id[deployments["break_glass"].human_id]
    assert glass["emergency"] is True and "break-glass" in glass["exceptions"]
    assert glass["deployer"] == "Sam SRE"
    assert "Scoring outage" in glass["justification"]


def test_each_row_carries_its_release_crs_approvals_and_tests(deployments, auditor):
    row = _report(auditor)["rows"][-1]
    release = deployments["authorised"].release
    assert row["release"] == "rsd 7.2.4" and row["authorised"] is True and row["emergency"] is False
    assert [cr["id"] for cr in row["change_requests"]] == [cr.human_id for cr in release.change_requests.all()]
    # Part 11 manifestation of the production approval: printed name, meaning, UTC time.
    quinn = [a for a in row["approvals"] if a["printed_name"] == "Quinn Quality"]
    assert quinn and quinn[0]["meaning"] == "Approved" and quinn[0]["signed_at"].endswith(" UTC")
    assert row["tests"] == {"passed": 10, "failed": 0, "error": 0, "skipped": 0, "total": 10}
    assert row["deployer"] == "CI (rsd)"


def test_completeness_is_counted_independently_and_the_query_is_versioned(deployments, auditor):
    report = _report(auditor)
    assert report["completeness"]["deployments_in_range"] == 3 == report["completeness"]["rows_in_report"]
    assert report["completeness"]["complete"] is True
    assert "the report is complete" in report["completeness"]["statement"]
    assert report["query_version"] == POPULATION_QUERY_VERSION
    assert len(report["query_sha256"]) == 64
    # The hash names the query, not the period: another period, same hash.
    other = population_report(user=auditor, start=timezone.now().date(), end=timezone.now().date())
    assert other["query_sha256"] == report["query_sha256"]


def test_csv_has_the_same_rows_in_the_same_order_with_the_statement_first(deployments, auditor):
    report = _report(auditor)
    text = population_csv(report)
    lines = text.splitlines()
    assert lines[0].startswith(f"# Custody population report, query {POPULATION_QUERY_VERSION} sha256 ")
    assert "counted independently" in lines[1]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[2:]))))
    assert [r["deployment"] for r in rows] == [r["deployment"] for r in report["rows"]]
    assert rows[-1]["authorised"] == "yes" and "Quinn Quality — Approved" in rows[-1]["approvals"]
    assert rows[0]["authorised"] == "no"


def test_pdf_lists_every_deployment_and_the_completeness_statement(deployments, auditor):
    report = _report(auditor)
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(population_pdf(report))).pages).split())
    for row in report["rows"]:
        assert row["deployment"] in text
    assert "the report is complete" in text and POPULATION_QUERY_VERSION in text
    assert "Quinn Quality" in text and "Sam SRE" in text


def test_api_serves_json_csv_and_pdf_to_the_auditor(deployments, auditor, api):
    today = timezone.now().date()
    url = f"/api/v1/population-report?from={today - timedelta(days=7)}&to={today}"
    body = api(auditor).get(url).json()
    assert body["completeness"]["complete"] is True and len(body["rows"]) == 3
    csv_response = api(auditor).get(url + "&format=csv")
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    pdf_response = api(auditor).get(url + "&format=pdf")
    assert pdf_response.status_code == 200 and pdf_response.content.startswith(b"%PDF")


def test_api_refuses_bad_periods_and_formats_with_400(product, auditor, api):
    assert api(auditor).get("/api/v1/population-report?from=yesterday&to=2025-01-01").json()["error"] == "invalid_input"
    response = api(auditor).get("/api/v1/population-report?from=2025-02-01&to=2025-01-01")
    assert response.status_code == 400 and "after" in response.json()["detail"]
    response = api(auditor).get("/api/v1/population-report?from=2025-01-01&to=2025-01-31&format=xml")
    assert response.status_code == 400 and "format" in response.json()["detail"]


def test_outsider_and_another_products_token_get_404(deployments, outsider, other_product_token, api):
    url = "/api/v1/population-report?from=2025-01-01&to=2030-01-01"
    assert api(outsider).get(url).status_code == 404
    assert api(token=other_product_token).get(url + "&product=rsd").status_code == 404
    # Its own product's population holds none of rsd's deployments.
    assert api(token=other_product_token).get(url).json()["rows"] == []
