"""Continuous vulnerability monitoring: OSV advisories from files open findings on running releases; VEX closes."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from alerts.models import Alert
from approvals import releases
from changecontrol.models import AuditEvent, Environment
from evidence.models import SbomComponent, VexStatement
from runtime import deployments
from runtime.models import Advisory, AdvisoryFinding
from runtime.osv import osv_import, package_base, records_from, version_affected
from tests.builders import add_evidence, make_artifact, make_build

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data" / "osv"
LOG4SHELL = "GHSA-jfh8-c2jp-5v3q"


def _components(artifact, *components):
    evidence = add_evidence(artifact, "cyclonedx", name="sbom-osv")
    for name, version, purl in components:
        SbomComponent.objects.create(evidence=evidence, artifact=artifact, name=name, version=version, purl=purl)


@pytest.fixture
def running(product, cast, ci_account, release, artifact):
    """7.2.4 (log4j-core 2.14.1, Jinja2 3.1.3) runs in production; 7.3.0 (log4j-core 2.14.1) runs nowhere."""
    _components(
        artifact,
        ("log4j-core", "2.14.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar"),
        ("Jinja2", "3.1.3", "pkg:pypi/jinja2@3.1.3"),
    )
    idle = make_artifact(make_build(product, registered_by=ci_account), name="rsd-batch")
    _components(idle, ("log4j-core", "2.14.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"))
    releases.release_create(
        product=product, actor=cast["rory"], version="7.3.0", artifact_digests=[idle.digest], change_request_ids=[]
    )
    production = Environment.objects.get(product=product, key="production")
    deployments.deployment_record(environment=production, deployer=ci_account, artifact=artifact)
    return artifact


def test_a_directory_of_real_advisories_opens_one_finding_per_running_release_and_advisory(running, release):
    result = osv_import(records=records_from(str(DATA)))
    assert (result.read, result.created) == (2, 2)
    findings = {f.advisory.osv_id: f for f in AdvisoryFinding.objects.select_related("advisory", "release")}
    assert set(findings) == {LOG4SHELL, "GHSA-h75v-3vvj-5mfj"}
    log4shell = findings[LOG4SHELL]
    assert (log4shell.release, log4shell.artifact, log4shell.state) == (release, running, "open")
    assert log4shell.components[0]["version"] == "2.14.1"
    assert log4shell.environments == [{"product": "rsd", "environment": "production", "via": "deployment"}]
    assert AuditEvent.objects.filter(action="advisory_finding.opened").count() == 2
    alert = Alert.objects.get(event_kind="vulnerability")
    assert LOG4SHELL in alert.subject and {f["release"] for f in alert.body["findings"]} == {"7.2.4"}


def test_importing_again_opens_nothing_new(running):
    osv_import(records=records_from(str(DATA)))
    again = osv_import(records=records_from(str(DATA)))
    assert (again.unchanged, again.findings_opened) == (2, [])
    assert AdvisoryFinding.objects.count() == 2
    assert Alert.objects.filter(event_kind="vulnerability").count() == 1


def test_zip_and_tar_archives_are_read(running, tmp_path):
    files = sorted(DATA.glob("*.json"))
    zipped = tmp_path / "osv.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for file in files:
            archive.write(file, f"PyPI/{file.name}")
    tarred = tmp_path / "osv.tar.gz"
    with tarfile.open(tarred, "w:gz") as archive:
        for file in files:
            archive.add(file, f"all/{file.name}")
    assert [name for name, _ in records_from(str(zipped))] == [f"PyPI/{f.name}" for f in files]
    assert len(records_from(str(tarred))) == 2
    out = io.StringIO()
    call_command("import_osv", str(tarred), stdout=out)
    assert "2 finding(s) opened" in out.getvalue() and "7.2.4" in out.getvalue()


def test_a_signed_vex_not_affected_closes_the_finding(running):
    osv_import(records=records_from(str(DATA / f"{LOG4SHELL}.json")))
    vex = add_evidence(running, "openvex", verdict="signed", name="vex")
    statement = VexStatement.objects.create(
        evidence=vex,
        artifact=running,
        vuln_id="CVE-2021-44228",
        products=["pkg:maven/org.apache.logging.log4j/log4j-core"],
        status="not_affected",
        justification="vulnerable_code_not_in_execute_path",
    )
    result = osv_import(records=[])
    assert result.findings_closed == 1
    finding = AdvisoryFinding.objects.get()
    assert (finding.state, finding.closed_by) == ("closed", statement)
    assert AuditEvent.objects.filter(action="advisory_finding.closed").count() == 1


def test_an_unsigned_or_affected_vex_closes_nothing(running):
    osv_import(records=records_from(str(DATA / f"{LOG4SHELL}.json")))
    for verdict, status in (("unsigned", "not_affected"), ("signed", "affected")):
        vex = add_evidence(running, "openvex", verdict=verdict, name=f"vex-{verdict}")
        VexStatement.objects.create(evidence=vex, artifact=running, vuln_id=LOG4SHELL, status=status)
    assert osv_import(records=[]).findings_closed == 0
    assert AdvisoryFinding.objects.get().state == "open"


def test_a_withdrawn_advisory_opens_nothing(running):
    record = json.loads((DATA / f"{LOG4SHELL}.json").read_bytes())
    record["withdrawn"] = "2022-04-01T00:00:00Z"
    osv_import(records=[("withdrawn.json", json.dumps(record).encode())])
    assert Advisory.objects.get().withdrawn is not None
    assert not AdvisoryFinding.objects.exists()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "not an OSV record"),
        (b'{"id": "X-1", "affected": {}}', "`affected` must be a list"),
    ],
)
def test_a_bad_record_refuses_the_whole_import(running, data, says):
    with pytest.raises(CommandError, match=says):
        call_command("import_osv", str(_write(data)))
    assert not Advisory.objects.exists()


def _write(data: bytes) -> Path:
    import tempfile

    directory = Path(tempfile.mkdtemp())
    (directory / f"{LOG4SHELL}.json").write_bytes((DATA / f"{LOG4SHELL}.json").read_bytes())
    (directory / "zz-bad.json").write_bytes(data)
    return directory


def test_a_missing_path_is_a_clear_refusal():
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_osv", "/nonexistent/osv")


@pytest.mark.parametrize(
    ("package", "base"),
    [
        (
            {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
            "pkg:maven/org.apache.logging.log4j/log4j-core",
        ),
        ({"ecosystem": "PyPI", "name": "Jinja2"}, "pkg:pypi/jinja2"),
        ({"ecosystem": "npm", "name": "@babel/traverse"}, "pkg:npm/%40babel/traverse"),
        ({"ecosystem": "Go", "name": "golang.org/x/net"}, "pkg:golang/golang.org/x/net"),
        ({"purl": "pkg:npm/lodash@4.17.20"}, "pkg:npm/lodash"),
        ({"ecosystem": "Unknown", "name": "x"}, ""),
    ],
)
def test_package_names_become_purls(package, base):
    assert package_base(package) == base


@pytest.mark.parametrize(
    ("version", "affected"),
    [("2.14.1", True), ("2.15.0", False), ("2.12.1", True), ("2.12.2", False), ("2.3.0", True), ("2.3.1", False)],
)
def test_log4shell_ranges(version, affected):
    record = json.loads((DATA / f"{LOG4SHELL}.json").read_bytes())
    assert any(version_affected(version, entry) for entry in record["affected"]) is affected


def test_last_affected_and_versions_lists():
    entry = {"ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"last_affected": "1.2.0"}]}]}
    assert version_affected("1.2.0", entry) and not version_affected("1.2.1", entry)
    assert version_affected("0.9", {"versions": ["0.9"], "ranges": []})
    git_only = {"ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}
    assert not version_affected("1.0.0", git_only)


def test_the_dashboard_shows_open_findings_until_vex_closes_them(client, running, cast):
    osv_import(records=records_from(str(DATA / f"{LOG4SHELL}.json")))
    client.force_login(cast["sam"])  # an SRE on the product
    page = client.get("/")
    panel = page.context["dashboard"].panel("vulnerability_findings")
    assert panel.count == 1 and panel.rows[0]["finding"].advisory.osv_id == LOG4SHELL
    html = page.content.decode()
    assert 'id="panel-vulnerability_findings"' in html and "/affected/?vulnerability=GHSA-jfh8-c2jp-5v3q" in html
    vex = add_evidence(running, "openvex", verdict="signed", name="vex")
    VexStatement.objects.create(evidence=vex, artifact=running, vuln_id=LOG4SHELL, status="fixed")
    osv_import(records=[])
    assert client.get("/").context["dashboard"].panel("vulnerability_findings").count == 0


def test_an_outsider_sees_no_finding_on_the_dashboard(client, running, outsider):
    osv_import(records=records_from(str(DATA)))
    client.force_login(outsider)
    dashboard = client.get("/").context["dashboard"]
    assert all(panel.key != "vulnerability_findings" or panel.count == 0 for panel in dashboard.panels)


def test_a_release_deployed_after_the_import_is_matched_against_stored_advisories(
    product, cast, ci_account, django_capture_on_commit_callbacks
):
    later = make_artifact(make_build(product, registered_by=ci_account), name="rsd-late")
    _components(later, ("Jinja2", "3.1.3", "pkg:pypi/jinja2@3.1.3"))
    release = releases.release_create(
        product=product, actor=cast["rory"], version="8.0.0", artifact_digests=[later.digest], change_request_ids=[]
    )
    osv_import(records=records_from(str(DATA)))
    assert not AdvisoryFinding.objects.exists()  # nothing of it runs yet
    assert Advisory.objects.get(osv_id="GHSA-h75v-3vvj-5mfj").packages == ["pkg:pypi/jinja2"]
    staging = Environment.objects.get(product=product, key="staging")
    with django_capture_on_commit_callbacks(execute=True):
        deployments.deployment_record(environment=staging, deployer=ci_account, artifact=later)
    finding = AdvisoryFinding.objects.get()
    assert (finding.release, finding.advisory.osv_id) == (release, "GHSA-h75v-3vvj-5mfj")
    assert finding.environments == [{"product": "rsd", "environment": "staging", "via": "deployment"}]
    assert Alert.objects.filter(event_kind="vulnerability").count() == 1


def test_a_snapshot_naming_a_new_artifact_is_matched_too(product, cast, ci_account, django_capture_on_commit_callbacks):
    from runtime import drift

    later = make_artifact(make_build(product, registered_by=ci_account), name="rsd-late")
    _components(later, ("log4j-core", "2.14.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"))
    releases.release_create(
        product=product, actor=cast["rory"], version="8.0.0", artifact_digests=[later.digest], change_request_ids=[]
    )
    osv_import(records=records_from(str(DATA)))
    production = Environment.objects.get(product=product, key="production")
    with django_capture_on_commit_callbacks(execute=True):
        drift.snapshot_record(
            environment=production, reporter=ci_account, artifacts=[{"name": "rsd-late", "digest": later.digest}]
        )
    finding = AdvisoryFinding.objects.get()
    assert finding.advisory.osv_id == LOG4SHELL
    assert finding.environments == [{"product": "rsd", "environment": "production", "via": "snapshot"}]
