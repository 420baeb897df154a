"""The trace matrix: one row per requirement, gap statuses with policy severities, coverage, constant queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from changecontrol import services
from changecontrol.models import User
from evidence.models import Evidence
from tests.conftest import open_change_request
from tests.traceability.factories import artifact, item, link, results
from traceability import matrix as trace
from traceability import services as items

pytestmark = pytest.mark.django_db


def rows_by_id(matrix):
    return {row["id"]: row for row in matrix["rows"]}


@pytest.fixture
def chain(product, author):
    """HAZ-1 ← RC-1 → REQ-001 (safety), plus REQ-002 and REQ-003 (plain)."""
    hazard, control = (
        item(product, author, "HAZ-1", "Missed deterioration"),
        item(product, author, "RC-1", "Staleness banner"),
    )
    req1 = item(product, author, "REQ-001", "Show a staleness banner after 15 minutes")
    req2, req3 = item(product, author, "REQ-002", "Flag amber scores"), item(product, author, "REQ-003", "Export CSV")
    link(control, hazard, "mitigates", author)
    link(control, req1, "implements", author)
    return {"hazard": hazard, "control": control, "req1": req1, "req2": req2, "req3": req3}


def test_each_requirement_gets_its_status_risk_controls_hazards_tests_and_coverage(product, author, chain):
    built = artifact(product, author, commits=["REQ-001: banner after 15 min (CR-1)", "chore: bump deps"])
    results(built, author, [("test_banner_REQ_001", "passed", ["REQ-001"]), ("test_amber", "failed", ["REQ-002"])])
    matrix = trace.trace_matrix(product=product)
    rows = rows_by_id(matrix)
    assert list(rows) == ["REQ-001", "REQ-002", "REQ-003"]
    assert rows["REQ-001"]["status"] == "verified"
    assert rows["REQ-001"]["risk_controls"] == ["RC-1"]
    assert rows["REQ-001"]["hazards"] == ["HAZ-1"]
    assert rows["REQ-001"]["commits"] == [built.build.commits.get(position=0).sha[:12]]
    assert [(t["name"], t["result"]) for t in rows["REQ-001"]["tests"]] == [
        ("tests.test_score::test_banner_REQ_001", "passed")
    ]
    assert (rows["REQ-002"]["status"], rows["REQ-002"]["severity"]) == ("failed", "error")
    assert (rows["REQ-003"]["status"], rows["REQ-003"]["severity"]) == ("missing_test", "error")
    assert matrix["coverage"] == 33.3
    assert matrix["counts"]["verified"] == 1
    assert matrix["risk_controls"] == [
        {
            "id": "RC-1",
            "title": "Staleness banner",
            "version": 1,
            "hazards": ["HAZ-1"],
            "requirements": ["REQ-001"],
            "verified": True,
            "severity": "",
        }
    ]
    # CR-1 does not exist in rsd: reported, not dropped.
    assert matrix["unknown_references"]["commits"][0]["unknown"] == ["CR-1"]


def test_the_latest_result_counts_so_a_fixed_test_turns_the_row_green(product, author, chain):
    built = artifact(product, author)
    earlier = timezone.now() - timedelta(hours=1)
    results(built, author, [("test_banner", "failed", ["REQ-001"], earlier)])
    results(built, author, [("test_banner", "passed", ["REQ-001"], timezone.now())])
    assert rows_by_id(trace.trace_matrix(product=product))["REQ-001"]["status"] == "verified"


def test_a_safety_requirement_without_a_passing_test_leaves_its_risk_control_unverified(product, author, chain):
    row = rows_by_id(trace.trace_matrix(product=product))["REQ-001"]
    assert [g["gap"] for g in row["gaps"]] == ["missing_test", "risk_control_unverified"]
    matrix = trace.trace_matrix(product=product)
    assert matrix["risk_controls"][0]["verified"] is False
    assert matrix["counts"]["risk_control_unverified"] == 1


def test_only_skipped_results_mean_not_executed(product, author, chain):
    results(artifact(product, author), author, [("test_amber", "skipped", ["REQ-002"])])
    row = rows_by_id(trace.trace_matrix(product=product))["REQ-002"]
    assert (row["status"], row["severity"]) == ("not_executed", "warning")


def test_a_result_obtained_before_the_current_version_does_not_count(product, author, chain):
    built = artifact(product, author)
    results(built, author, [("test_amber", "passed", ["REQ-002"])])
    assert rows_by_id(trace.trace_matrix(product=product))["REQ-002"]["status"] == "verified"
    items.item_edit(item=chain["req2"], actor=author, text="Scores strictly above the threshold are flagged.")
    row = rows_by_id(trace.trace_matrix(product=product))["REQ-002"]
    assert (row["status"], row["version"], row["tests"][0]["counts"]) == ("not_executed", 2, False)
    results(built, author, [("test_amber", "passed", ["REQ-002"])])
    assert rows_by_id(trace.trace_matrix(product=product))["REQ-002"]["status"] == "verified"


def test_rejected_or_badly_signed_evidence_never_counts(product, author, chain):
    built = artifact(product, author)
    results(built, author, [("test_amber", "passed", ["REQ-002"])], verdict=Evidence.Verdict.INVALID_SIGNATURE)
    results(built, author, [("test_export", "passed", ["REQ-003"])], state=Evidence.State.REJECTED)
    rows = rows_by_id(trace.trace_matrix(product=product))
    assert rows["REQ-002"]["status"] == rows["REQ-003"]["status"] == "missing_test"


def test_a_suspect_link_shows_on_the_rows_it_touches(product, author, chain):
    results(artifact(product, author), author, [("test_banner", "passed", ["REQ-001"])])
    items.item_edit(item=chain["control"], actor=author, text="Banner after 10 minutes")
    row = rows_by_id(trace.trace_matrix(product=product))["REQ-001"]
    assert (row["status"], row["severity"]) == ("suspect", "warning")


def test_a_test_naming_an_unknown_requirement_is_an_orphan(product, author, chain):
    results(artifact(product, author), author, [("test_ghost", "passed", ["REQ-404"])])
    matrix = trace.trace_matrix(product=product)
    assert matrix["orphan_tests"] == [
        {"name": "tests.test_score::test_ghost", "result": "passed", "unknown_ids": ["REQ-404"], "severity": "warning"}
    ]
    assert matrix["counts"]["orphan_test"] == 1


def test_gap_severities_come_from_the_policy(product, author, chain, quality_reviewer):
    from changecontrol.policy import DEFAULT_POLICY_YAML

    source = DEFAULT_POLICY_YAML.replace("    missing_test: error", "    missing_test: warning", 1)
    source = source.replace("    failed: error", "    failed: ignored", 1)
    assert source != DEFAULT_POLICY_YAML
    version = services.policy_version_propose(
        product=product, author=User.objects.get(username="polly"), source=source, reason="soften trace gaps"
    )
    from tests.conftest import PASSWORD, policy_version_sha256

    services.policy_version_sign(
        policy_version=version,
        signer=quality_reviewer,
        username="quinn",
        password=PASSWORD,
        seen_sha256=policy_version_sha256(version),
    )
    results(artifact(product, author), author, [("test_amber", "failed", ["REQ-002"])])
    rows = rows_by_id(trace.trace_matrix(product=product))
    assert rows["REQ-003"]["severity"] == "warning"
    assert (rows["REQ-002"]["status"], rows["REQ-002"]["severity"]) == ("failed", "")


def test_the_release_matrix_counts_only_results_on_the_release_artifacts(product, author, chain):
    shipped, other = artifact(product, author), artifact(product, author)
    results(shipped, author, [("test_banner", "passed", ["REQ-001"])])
    results(other, author, [("test_amber", "passed", ["REQ-002"])])
    rows = rows_by_id(trace.trace_matrix(product=product, artifact_ids=[shipped.pk]))
    assert rows["REQ-001"]["status"] == "verified"
    assert rows["REQ-002"]["status"] == "missing_test"
    assert trace.trace_matrix(product=product, artifact_ids=[])["coverage"] == 0.0


def test_change_requests_linked_to_a_requirement_show_in_its_row(product, author, chain, release_manager):
    change = open_change_request(product=product, requester=release_manager)
    items.change_request_items_link(change_request=change, actor=release_manager, identifiers=["REQ-002"])
    row = rows_by_id(trace.trace_matrix(product=product))["REQ-002"]
    assert row["change_requests"] == [{"id": change.human_id, "state": change.state, "title": change.title}]


def test_obsolete_requirements_and_headings_are_not_rows(product, author, chain):
    items.item_edit(item=chain["req3"], actor=author, status="obsolete")
    item(product, author, "SEC-1", "Section 1", kind="requirement", attributes={"spec_object_type": "Heading"})
    assert list(rows_by_id(trace.trace_matrix(product=product))) == ["REQ-001", "REQ-002"]


def _populate(product, author, size):
    control = item(product, author, f"RC-{size}00")
    built = artifact(product, author, commits=[f"REQ-{size}01 wip", "REQ-999999 typo"])
    cases = []
    for n in range(size):
        req = item(product, author, f"REQ-{size}{n:02d}")
        if n % 2:
            link(control, req, "implements", author)
        cases.append((f"test_{size}_{n}", "passed" if n % 3 else "failed", [req.identifier]))
    results(built, author, cases)


def test_the_matrix_uses_the_same_number_of_queries_whatever_the_size(product, author):
    _populate(product, author, 3)
    with CaptureQueriesContext(connection) as small:
        trace.trace_matrix(product=product)
    _populate(product, author, 40)
    with CaptureQueriesContext(connection) as large:
        matrix = trace.trace_matrix(product=product)
    assert len(matrix["rows"]) == 43
    assert len(small.captured_queries) == len(large.captured_queries) <= 10


def test_the_database_reduction_and_the_portable_one_agree(product, author, chain):
    built = artifact(product, author)
    results(built, author, [("test_banner", "failed", ["REQ-001"], timezone.now() - timedelta(hours=2))])
    results(built, author, [("test_banner", "passed", ["req-001"]), ("test_amber", "skipped", ["REQ-002", "REQ-404"])])
    fast = [tuple(row) for row in trace.latest_results(product=product, artifact_ids=None)]
    portable = trace._latest_results_python(product=product, artifact_ids=None)
    assert sorted(fast) == sorted(portable)
    assert len(fast) == 3


def test_the_items_and_results_queries_and_the_portable_ones_agree(product, author, chain):
    built = artifact(product, author)
    results(built, author, [("test_banner", "failed", ["REQ-001"], timezone.now() - timedelta(hours=2))])
    latest = results(built, author, [("test_banner", "passed", ["req-001"]), ("test_amber", "skipped", ["REQ-002"])])
    results(built, author, [("test_hazard", "passed", ["HAZ-1"]), ("test_export", "error", ["REQ-003", "REQ-404"])])
    items.item_edit(item=chain["req3"], actor=author, text="Export the scores as CSV with a header row.")
    fast_items, fast_rows = trace._matrix_rows_sql(product=product, artifact_ids=None)
    portable_items, portable_rows = trace._matrix_rows_python(product=product, artifact_ids=None)
    assert fast_items == portable_items and len(fast_items) == 5
    assert [row for row in fast_rows if row[0]] == [row for row in portable_rows if row[0]]
    assert sorted(row for row in fast_rows if not row[0]) == sorted(row for row in portable_rows if not row[0])

    _items, tested, orphans = trace.matrix_records(product=product, artifact_ids=None)
    [banner] = tested[chain["req1"].pk][0]
    assert banner == {
        "name": "tests.test_score::test_banner",
        "result": "passed",
        "at": latest.uploaded_at,
        "counts": True,
    }
    assert tested[chain["req1"].pk][1:] == (True, False)
    assert tested[chain["req2"].pk][1:] == (False, False)  # only skipped: not executed
    # The export test erred before REQ-003's version 2: reported, but it neither counts nor fails the row.
    assert [(t["result"], t["counts"]) for t in tested[chain["req3"].pk][0]] == [("error", False)]
    assert tested[chain["req3"].pk][1:] == (False, False)
    assert sorted(orphans) == [
        ["HAZ-1", "tests.test_score::test_hazard", "passed"],
        ["REQ-404", "tests.test_score::test_export", "error"],
    ]
    nothing = trace.matrix_records(product=product, artifact_ids=[])
    assert (len(nothing[0]), nothing[1:]) == (5, ({}, []))
    assert trace.matrix_records(product=product, artifact_ids=[built.pk])[1] == tested


def test_the_tests_of_a_row_are_ordered_by_name_whatever_the_case_of_the_id(product, author, chain):
    results(artifact(product, author), author, [("test_b", "passed", ["req-002"]), ("test_B", "passed", ["REQ-002"])])
    results(artifact(product, author), author, [("Test_a", "passed", ["Req-002"])])
    names = [t["name"] for t in rows_by_id(trace.trace_matrix(product=product))["REQ-002"]["tests"]]
    assert names == ["tests.test_score::Test_a", "tests.test_score::test_B", "tests.test_score::test_b"]


def test_commits_naming_unknown_ids_with_a_known_prefix_are_reported(product, author, chain):
    artifact(product, author, commits=["REQ-999 and haz-77: fix; see FOO-1 and REQ-002"])
    matrix = trace.trace_matrix(product=product)
    assert matrix["unknown_references"]["commits"][0]["unknown"] == ["HAZ-77", "REQ-999"]
    assert len(rows_by_id(matrix)["REQ-002"]["commits"]) == 1


def test_the_counts_add_up_per_gap_and_severity(product, author, chain):
    results(artifact(product, author), author, [("test_amber", "failed", ["REQ-002"]), ("test_x", "passed", ["X-1"])])
    counts = trace.trace_matrix(product=product)["counts"]
    assert {key: counts[key] for key in ("requirements", "verified", "failed", "missing_test")} == {
        "requirements": 3,
        "verified": 0,
        "failed": 1,
        "missing_test": 2,
    }
    assert (counts["risk_control_unverified"], counts["orphan_test"], counts["risk_controls_verified"]) == (1, 1, 0)
    # Rows: REQ-001 (missing test), REQ-002 (failed), REQ-003 (missing test) are errors; the orphan is a warning.
    assert (counts["errors"], counts["warnings"]) == (3, 1)


def test_the_whole_matrix_is_the_same_on_the_portable_path(product, author, chain, monkeypatch):
    built = artifact(product, author, commits=["REQ-001: banner", "REQ-404 typo"])
    results(built, author, [("test_banner", "failed", ["REQ-001"], timezone.now() - timedelta(hours=2))])
    results(built, author, [("test_banner", "passed", ["req-001"]), ("test_amber", "error", ["REQ-002", "RC-1"])])
    items.item_edit(item=chain["control"], actor=author, text="Banner after 10 minutes")
    fast = trace.trace_matrix(product=product)
    monkeypatch.setattr(trace, "_matrix_rows_sql", trace._matrix_rows_python)
    assert trace.trace_matrix(product=product) == fast
    assert [row["status"] for row in fast["rows"]] == ["suspect", "failed", "missing_test"]
