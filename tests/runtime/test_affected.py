"""Is any released version affected? The search by purl, name and range, or vulnerability id, with where it runs."""

from __future__ import annotations

import csv
import io

import pytest

from approvals import releases
from changecontrol.models import Environment
from evidence.models import SbomComponent, Vulnerability
from runtime import deployments, drift
from runtime.versions import compare, parse_range
from tests.builders import add_evidence, make_artifact, make_build

pytestmark = pytest.mark.django_db


def _sbom(artifact, *components):
    evidence = add_evidence(artifact, "cyclonedx", name="sbom-extra")
    for name, version, purl in components:
        SbomComponent.objects.create(evidence=evidence, artifact=artifact, name=name, version=version, purl=purl)
    return evidence


@pytest.fixture
def shipped(product, cast, ci_account, release, artifact, change_request):
    """Release 7.2.4 carries log4j-core 2.14.1 and runs in production; release 7.3.0 carries 2.17.1 and runs nowhere."""
    _sbom(artifact, ("log4j-core", "2.14.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"))
    scan = add_evidence(artifact, "grype", name="grype-extra")
    Vulnerability.objects.create(
        evidence=scan,
        artifact=artifact,
        vuln_id="GHSA-jfh8-c2jp-5v3q",
        aliases=["CVE-2021-44228"],
        package_name="log4j-core",
        package_version="2.14.1",
        purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        severity="critical",
    )
    newer = make_artifact(make_build(product, registered_by=ci_account), name="rsd-worker")
    _sbom(newer, ("log4j-core", "2.17.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1?type=jar"))
    releases.release_create(
        product=product, actor=cast["rory"], version="7.3.0", artifact_digests=[newer.digest], change_request_ids=[]
    )
    production = Environment.objects.get(product=product, key="production")
    deployments.deployment_record(environment=production, deployer=ci_account, artifact=artifact)
    return {"old": artifact, "new": newer}


def test_a_purl_without_version_finds_every_release_with_where_it_runs(api, release_manager, shipped):
    response = api(release_manager).get("/api/v1/affected", {"purl": "pkg:maven/org.apache.logging.log4j/log4j-core"})
    assert response.status_code == 200, response.content
    rows = {(r["release"], r["version"]): r for r in response.json()}
    assert set(rows) == {("7.2.4", "2.14.1"), ("7.3.0", "2.17.1")}
    assert rows[("7.2.4", "2.14.1")]["environments"] == [
        {"product": "rsd", "environment": "production", "via": "deployment"}
    ]
    assert rows[("7.3.0", "2.17.1")]["environments"] == []
    assert rows[("7.2.4", "2.14.1")]["artifact"] == shipped["old"].digest


def test_a_version_range_narrows_a_name_search(api, release_manager, shipped):
    response = api(release_manager).get("/api/v1/affected", {"name": "LOG4J-core", "version": ">=2.0.0,<2.17.0"})
    assert [(r["release"], r["version"], r["matched_by"]) for r in response.json()] == [("7.2.4", "2.14.1", "name")]


def test_component_is_the_same_as_name(api, release_manager, shipped):
    response = api(release_manager).get("/api/v1/affected", {"component": "log4j-core", "version": "<2.17"})
    assert [r["release"] for r in response.json()] == ["7.2.4"]


def test_a_purl_with_a_version_is_that_version_only(api, release_manager, shipped):
    response = api(release_manager).get(
        "/api/v1/affected", {"purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1"}
    )
    assert [r["release"] for r in response.json()] == ["7.3.0"]


def test_a_vulnerability_is_found_by_its_alias(api, release_manager, shipped):
    response = api(release_manager).get("/api/v1/affected", {"vulnerability": "cve-2021-44228"})
    rows = response.json()
    assert [(r["release"], r["vulnerability"], r["matched_by"]) for r in rows] == [
        ("7.2.4", "GHSA-jfh8-c2jp-5v3q", "vulnerability")
    ]
    assert rows[0]["suppressed_by_vex"] is False


def test_the_latest_snapshot_counts_as_running(api, release_manager, shipped, ci_account, product):
    staging = Environment.objects.get(product=product, key="staging")
    drift.snapshot_record(
        environment=staging, reporter=ci_account, artifacts=[{"name": "rsd-worker", "digest": shipped["new"].digest}]
    )
    rows = api(release_manager).get("/api/v1/affected", {"name": "log4j-core", "version": "2.17.1"}).json()
    assert rows[0]["environments"] == [{"product": "rsd", "environment": "staging", "via": "snapshot"}]


def test_a_newer_deployment_of_the_same_artifact_name_replaces_it(api, release_manager, shipped, product, ci_account):
    production = Environment.objects.get(product=product, key="production")
    replacement = make_artifact(make_build(product, registered_by=ci_account), name=shipped["old"].name)
    deployments.deployment_record(environment=production, deployer=ci_account, artifact=replacement)
    rows = api(release_manager).get("/api/v1/affected", {"name": "log4j-core", "version": "2.14.1"}).json()
    assert rows[0]["environments"] == []


def test_csv_has_the_same_rows(api, release_manager, shipped):
    for path, params in (("/api/v1/affected.csv", {}), ("/api/v1/affected", {"format": "csv"})):
        response = api(release_manager).get(path, {"name": "log4j-core", **params})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(response.content.decode())))
        assert table[0][:3] == ["product", "release", "artifact"]
        assert sorted(row[1] for row in table[1:]) == ["7.2.4", "7.3.0"]
        assert "rsd/production (deployment)" in {row[-1] for row in table[1:]}


def test_outsider_and_other_product_token_see_nothing(api, outsider, other_product_token, shipped):
    assert api(outsider).get("/api/v1/affected", {"name": "log4j-core"}).json() == []
    assert api(token=other_product_token).get("/api/v1/affected", {"name": "log4j-core"}).json() == []


def test_the_product_ci_token_sees_its_product(api, ci_token, shipped):
    assert len(api(token=ci_token).get("/api/v1/affected", {"name": "log4j-core"}).json()) == 2


def test_anonymous_is_refused(api, shipped):
    assert api().get("/api/v1/affected", {"name": "log4j-core"}).status_code in (401, 403)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "exactly one of purl, name or vulnerability"),
        ({"name": "x", "vulnerability": "CVE-1"}, "exactly one"),
        ({"name": "x", "version": "^1.2"}, "not a range this search reads"),
        ({"name": "x", "version": "vers:npm/>=1.0"}, "'vers:'"),
        ({"name": "x", "version": ">=1.0 || <0.5"}, "not a range"),
        ({"name": "x", "version": ">=banana"}, "neither a PEP 440 nor a semver"),
        ({"purl": "maven/log4j"}, "not a package URL"),
        ({"purl": "pkg:pypi/django@4.2", "version": "<5"}, "not both"),
        ({"vulnerability": "CVE-2021-44228", "version": "<5"}, "not a vulnerability"),
        ({"vulnerability": "CVE 2021 <script>"}, "must be an id"),
    ],
)
def test_bad_questions_are_400_saying_what_to_send(api, release_manager, params, says):
    response = api(release_manager).get("/api/v1/affected", params)
    assert response.status_code == 400, response.content
    assert says in response.json()["detail"]


def test_the_page_searches_and_links_the_csv(client, release_manager, shipped):
    client.force_login(release_manager)
    page = client.get("/affected/", {"purl": "pkg:maven/org.apache.logging.log4j/log4j-core", "version": "<2.17"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="affected-rows"' in html
    assert "7.2.4" in html and "7.3.0" not in html
    assert "rsd/production (deployment)" in html
    assert "/api/v1/affected.csv?" in html
    bad = client.get("/affected/", {"name": "x", "version": "~1"})
    assert bad.status_code == 200 and "not a range this search reads" in bad.content.decode()


@pytest.mark.parametrize(
    ("version", "operator", "bound", "holds"),
    [
        ("2.14.1", "<", "2.17.0", True),
        ("2.17.0", "<", "2.17.0", False),
        ("1.0.0-rc.1", "<", "1.0.0", True),  # a pre-release sorts before its release
        ("1.0.0-alpha.beta", "<", "1.0.0-alpha.1", False),  # semver: alphanumeric after numeric identifiers
        ("1.0.0-alpha.1", "<", "1.0.0-alpha.beta", True),
        ("1.0", "==", "1.0.0", True),
        ("1:2.3-4", ">=", "1.0", False),  # a Debian epoch is not ordered against PEP 440
        ("1:2.3-4", "==", "1:2.3-4", True),
    ],
)
def test_version_comparisons(version, operator, bound, holds):
    assert compare(version, operator, bound) is holds


def test_a_range_is_a_conjunction():
    assert parse_range(">=1.2, <1.4.5").contains("1.3")
    assert not parse_range(">=1.2, <1.4.5").contains("1.4.5")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_search_form_answers_with_where_it_runs_and_no_csp_violation(signed_in_page, cast, shipped):
    from playwright.sync_api import expect

    page = signed_in_page(cast["rory"])
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto("/deployments/")
    page.get_by_role("link", name="Affected releases").click()
    page.get_by_label("Component name").fill("log4j-core")
    page.get_by_label("Version range").fill(">=2.0,<2.17")
    page.get_by_role("button", name="Search").click()
    rows = page.get_by_test_id("affected-rows").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("7.2.4")
    expect(rows.first).to_contain_text("rsd/production (deployment)")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "affected.csv"
    assert violations == []
