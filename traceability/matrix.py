"""The trace matrix: requirement → risk controls and hazards → change requests → commits → tests → results.

Computed from the workflow records, never typed: items and links (changecontrol), explicit CR links, the commit
messages of the builds, and the test results of the artifacts. One row per requirement with its gaps, each gap's
severity taken from the policy (`traceability.severities`), and a coverage figure on top.

Cost: a fixed number of SQL queries whatever the size (the policy, items, links, CR links, change requests,
commits, and one results query). On PostgreSQL the results query reduces the test results to the latest one per
requirement and test first (expanding `jsonb_array_elements_text(requirement_ids)`), joins those reduced rows to
the items case-insensitively, and decides in the database whether each result was obtained after the
requirement's current version; it returns plain rows ordered by item and test, times as epoch seconds. Python walks
them once. Elsewhere (SQLite, the embedded default) the same rows come from a Python reduction
(`_matrix_rows_python`), and tests keep the two equal.
"""

from __future__ import annotations

import gc
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models.fields.json import KT

from changecontrol.models import ChangeRequest, Product
from changecontrol.policy import DEFAULT_GAP_SEVERITIES, TRACE_GAPS
from evidence.models import COUNTING_STATE, COUNTING_VERDICTS, Artifact, BuildCommit, TestResult
from traceability.models import ChangeRequestItem, TraceItem, TraceItemVersion, TraceLink
from traceability.scope import RETIRED_STATUSES, ReleaseScope, in_force

# The order a row's status is chosen in when it has several gaps: the most actionable first.
GAP_PRECEDENCE = ("failed", "missing_test", "not_executed", "risk_control_unverified", "suspect")
SEVERITY_RANK = {"error": 2, "warning": 1, "ignored": 0}
VERIFIED = "verified"
REFERENCE = re.compile(r"\b([A-Za-z][A-Za-z0-9_]{0,30})-(\d{1,9})\b")
FAILING = frozenset({TestResult.Status.FAILED, TestResult.Status.ERROR})

# One hash aggregate per (requirement, test): the latest time and the outcome obtained then (when two results share
# that time the worse one wins: a failure is never hidden). Everything downstream joins these reduced rows (about
# one per test), never the raw results.
_LATEST_CTE = """
latest AS (
    SELECT upper(req.value) COLLATE "C" AS requirement, tr.classname, tr.name,
           CASE max(t.at)
               WHEN max(t.at) FILTER (WHERE tr.status = 'failed') THEN 'failed'
               WHEN max(t.at) FILTER (WHERE tr.status = 'error') THEN 'error'
               WHEN max(t.at) FILTER (WHERE tr.status = 'passed') THEN 'passed'
               ELSE 'skipped'
           END AS outcome,
           max(t.at) AS at
    FROM evidence_testresult tr
    JOIN evidence_evidence ev ON ev.id = tr.evidence_id
    CROSS JOIN LATERAL (SELECT COALESCE(tr.executed_at, ev.uploaded_at) AS at) AS t
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(tr.requirement_ids) = 'array' THEN tr.requirement_ids ELSE '[]'::jsonb END
    ) AS req(value)
    WHERE ev.product_id = %s AND {counting} {artifact_filter}
    GROUP BY 1, tr.classname, tr.name
)""".replace(
    # Which evidence counts: the same rule as EvidenceQuerySet.counting(), spelled in SQL from the same constants.
    "{counting}",
    f"ev.state = '{COUNTING_STATE}' AND ev.verdict IN ({', '.join(repr(v) for v in COUNTING_VERDICTS)})",
)
_TEST_NAME = "CASE WHEN l.classname <> '' THEN l.classname || '::' || l.name ELSE l.name END"
_LATEST_RESULTS_SQL = (
    "WITH"  # noqa: S608 - constants only
    + _LATEST_CTE
    + " SELECT COALESCE(json_agg(json_build_array(l.requirement, "
    + _TEST_NAME
    + ", l.outcome, extract(epoch FROM l.at)::float8)), '[]') FROM latest l"
)
# The items of the product, by pk (so when two IDs differ only by case the newest wins wherever IDs are looked up).
_ITEMS_SQL = """
SELECT id, kind, identifier, title, version, status, attributes ->> 'spec_object_type'
FROM changecontrol_traceitem WHERE product_id = %s ORDER BY id
"""
# The reduced results joined to the items they name, in the database: an ID names the item whose identifier matches
# case-insensitively (the newest item when two differ only by case); a result names a requirement, anything else
# makes the test an orphan (item NULL). `counts` compares the result's time with the requirement's current version
# (IEC 62304: a test of an older text verified that text, not this one). Plain rows, ordered by item and then test
# by code point (COLLATE "C", as Python sorts): fetching tuples costs less than building and parsing JSON. Times
# travel as epoch seconds (float8, decoded in C); Django's timestamptz loader would cost ~6 µs a value in Python.
_MATCHED_SQL = (
    "WITH"  # noqa: S608 - constants only
    + _LATEST_CTE
    + """,
known AS (
    SELECT DISTINCT ON (upper(identifier) COLLATE "C") id, upper(identifier) COLLATE "C" AS requirement,
           kind = 'requirement' AS is_requirement, version_created_at
    FROM changecontrol_traceitem WHERE product_id = %s
    ORDER BY upper(identifier) COLLATE "C", id DESC
)
SELECT * FROM (
    SELECT k.id AS item_id, l.requirement, """
    + _TEST_NAME
    + """ AS test, l.outcome, date_part('epoch', l.at),
           COALESCE(l.at >= k.version_created_at, false)
    FROM latest l LEFT JOIN known k ON k.requirement = l.requirement AND k.is_requirement
) AS matched
ORDER BY item_id, test COLLATE "C"
"""
)
# When two results of one test carry the same time, the worse one is the latest (never hide a failure).
OUTCOME_RANK = {"failed": 3, "error": 2, "passed": 1, "skipped": 0}
_SKIPPED = TestResult.Status.SKIPPED.value


def is_traced_requirement(kind: str, status: str, spec_object_type: str | None) -> bool:
    if kind != TraceItem.Kind.REQUIREMENT or status in RETIRED_STATUSES:
        return False
    return (spec_object_type or "").strip().lower() != "heading"


def _run_json(sql: str, params: list[Any]) -> Any:
    """One query answering one JSON document, planned without JIT."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner guesses 100 rows per jsonb_array_elements_text call, so it would JIT-compile (~0.7 s) a
        # query that runs in a tenth of that. SET LOCAL ends with the transaction.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        document = cursor.fetchone()[0]
    return json.loads(document) if isinstance(document, str) else document


def _artifact_filter(ids: list[int] | None) -> tuple[str, list[Any]]:
    return ("AND tr.artifact_id = ANY(%s)", [ids]) if ids is not None else ("", [])


def latest_results(*, product: Product, artifact_ids: Iterable[int] | None) -> list[tuple]:
    """(REQUIREMENT ID, test name, status, epoch seconds): the latest counted result per requirement and test."""
    ids = None if artifact_ids is None else sorted(set(artifact_ids))
    if ids is not None and not ids:
        return []
    if connection.vendor != "postgresql":
        return _latest_results_python(product=product, artifact_ids=ids)
    artifact_filter, extra = _artifact_filter(ids)
    return _run_json(_LATEST_RESULTS_SQL.format(artifact_filter=artifact_filter), [product.pk, *extra])


def _latest_results_python(*, product: Product, artifact_ids: list[int] | None) -> list[tuple]:
    """The same reduction as the SQL, portable (SQLite in the embedded default)."""
    return [
        (requirement, test, status, at.timestamp() if at else None)
        for requirement, test, status, at in _latest_python(product=product, artifact_ids=artifact_ids)
    ]


def _latest_python(*, product: Product, artifact_ids: list[int] | None) -> list[tuple]:
    """(REQUIREMENT ID, test name, status, datetime) per requirement and test, ordered by (ID, class, name)."""
    queryset = TestResult.objects.counting().filter(evidence__product=product)
    if artifact_ids is not None:
        queryset = queryset.filter(artifact_id__in=artifact_ids)
    latest: dict[tuple, tuple] = {}
    rows = queryset.values_list(
        "requirement_ids", "classname", "name", "status", "executed_at", "evidence__uploaded_at"
    )
    for requirement_ids, classname, name, status, executed_at, uploaded_at in rows:
        at = executed_at or uploaded_at
        for requirement in requirement_ids if isinstance(requirement_ids, list) else []:
            key = (str(requirement).upper(), classname, name)
            current = latest.get(key)
            if current is None or (at, OUTCOME_RANK.get(status, 0)) > (current[4], OUTCOME_RANK.get(current[3], 0)):
                latest[key] = (key[0], classname, name, status, at)
    return [
        (requirement, f"{classname}::{name}" if classname else name, status, at)
        for requirement, classname, name, status, at in (row for _, row in sorted(latest.items()))
    ]


def matrix_records(*, product: Product, artifact_ids: Iterable[int] | None) -> tuple[list, dict, list]:
    """The items of the product by pk, their results, and the orphan tests.

    Items: (pk, kind, identifier, title, version, status, spec_object_type). Results: {item pk: (tests, executed,
    failing)} for the requirements some test names, `tests` the latest counted result of each test ordered by name
    as {"name", "result", "at", "counts"} (`counts` False for a result obtained before the requirement's current
    version), `executed` whether a counted result is not skipped, `failing` whether a counted result failed or
    errored. Orphans: [REQUIREMENT ID, test, outcome] for results naming an ID that is not a requirement.
    """
    ids = None if artifact_ids is None else sorted(set(artifact_ids))
    rows = _matrix_rows_sql if connection.vendor == "postgresql" else _matrix_rows_python
    items, matched = rows(product=product, artifact_ids=ids)
    return items, *_results_by_item(matched)


def _matrix_rows_sql(*, product: Product, artifact_ids: list[int] | None) -> tuple[list, list]:
    """The items, and the reduced results joined to them (item pk or None, ID, test, outcome, epoch, counts)."""
    with connection.cursor() as cursor:
        cursor.execute(_ITEMS_SQL, [product.pk])
        items = cursor.fetchall()
    if artifact_ids is not None and not artifact_ids:
        return items, []
    artifact_filter, extra = _artifact_filter(artifact_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner guesses 100 rows per jsonb_array_elements_text call, so it would JIT-compile (~0.7 s) a
        # query that runs in a tenth of that. SET LOCAL ends with the transaction.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_MATCHED_SQL.format(artifact_filter=artifact_filter), [product.pk, *extra, product.pk])
        return items, cursor.fetchall()


def _results_by_item(matched: list[tuple]) -> tuple[dict, list]:
    """One walk over the joined rows, grouped by item and ordered by test name (orphans, item None, last)."""
    # Every test of one report shares the report's upload time when it carries no time of its own, so a few
    # distinct times cover thousands of results: each datetime (immutable) is made once.
    times: dict[float | None, datetime | None] = {None: None}
    results: dict[int, tuple] = {}
    orphans: list[list] = []
    tests: list[dict] = []
    current, executed, failing = None, False, False
    for item_pk, requirement, test, outcome, epoch, counts in matched:
        if item_pk is None:
            orphans.append([requirement, test, outcome])
            continue
        if item_pk != current:
            if current is not None:
                results[current] = (tests, executed, failing)
            current, tests, executed, failing = item_pk, [], False, False
        at = times.get(epoch)
        if at is None and epoch is not None:
            at = times[epoch] = datetime.fromtimestamp(epoch, UTC)
        tests.append({"name": test, "result": outcome, "at": at, "counts": counts})
        if counts and outcome != _SKIPPED:
            executed = True
            if outcome in FAILING:
                failing = True
    if current is not None:
        results[current] = (tests, executed, failing)
    return results, orphans


def _matrix_rows_python(*, product: Product, artifact_ids: list[int] | None) -> tuple[list, list]:
    """The two queries' rows, portable: the latest results (Python reduction) joined to the items here."""
    fields = ("pk", "kind", "identifier", "title", "version", "status", KT("attributes__spec_object_type"))
    rows = list(TraceItem.objects.filter(product=product).order_by("pk").values_list(*fields, "version_created_at"))
    items = [row[:-1] for row in rows]
    version_at = {row[0]: row[-1] for row in rows}
    known = {item[2].upper(): item for item in items}  # by pk, so the newest item wins, as in SQL
    matched, orphans = [], []
    latest = [] if artifact_ids == [] else _latest_python(product=product, artifact_ids=artifact_ids)
    for requirement, test, outcome, at in latest:
        item = known.get(requirement)
        epoch = at.timestamp() if at else None
        if item is None or item[1] != TraceItem.Kind.REQUIREMENT:
            orphans.append((None, requirement, test, outcome, epoch, False))
        else:
            matched.append((item[0], requirement, test, outcome, epoch, at is not None and at >= version_at[item[0]]))
    matched.sort(key=lambda row: (row[0], row[2]))
    return items, matched + orphans


def _commits(*, product: Product, artifact_ids: list[int] | None):
    commits = BuildCommit.objects.filter(build__product=product)
    if artifact_ids is not None:
        commits = commits.filter(build_id__in=Artifact.objects.filter(id__in=artifact_ids).values("build_id"))
    # Messages without any "X-123" cannot link anything; the database drops them before they cross the wire.
    if connection.vendor == "postgresql":
        commits = commits.filter(message__regex=r"[A-Za-z]-[0-9]")
    return commits.values_list("sha", "message").distinct()


def _worst(severities: Iterable[str]) -> str:
    """The most severe of `severities` ("" for none); a loop, as it runs once per row."""
    worst, worst_rank = "", -2
    for severity in severities:
        rank = SEVERITY_RANK.get(severity, -1)
        if rank > worst_rank:
            worst, worst_rank = severity, rank
    return worst


def trace_matrix(
    *,
    product: Product,
    artifact_ids: Iterable[int] | None = None,
    severities=None,
    scope: ReleaseScope | None = None,
) -> dict[str, Any]:
    """The matrix of a product (artifact_ids None: every artifact) or of a release (its artifact ids).

    With a release's `scope`, only the items of that scope are judged, at the versions they had when the release
    froze, with the links they had then; items newer than the scope are listed apart (`outside_scope`).
    """
    with _collector_paused():
        return _trace_matrix(product=product, artifact_ids=artifact_ids, severities=severities, scope=scope)


@contextmanager
def _collector_paused():
    """Pause Python's cycle collector while the matrix is built, and restore it after.

    The matrix allocates tens of thousands of small dicts and lists, none of them in a cycle; each allocation
    burst triggers collections that rescan the whole heap of the process — a third of the matrix's time at
    5,000 requirements, for nothing to collect. Reference counting still frees everything as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _trace_matrix(
    *, product: Product, artifact_ids: Iterable[int] | None, severities, scope: ReleaseScope | None
) -> dict[str, Any]:
    artifact_ids = None if artifact_ids is None else sorted(set(artifact_ids))
    if severities is None:
        from changecontrol.services import active_policy

        policy = active_policy(product)
        severities = dict(policy.document.traceability.severities) if policy else dict(DEFAULT_GAP_SEVERITIES)
    # 1. Items and their reduced results, links, CR links, commits of the builds, change requests.
    records, results, orphan_results = matrix_records(product=product, artifact_ids=artifact_ids)
    outside_scope: list[dict[str, Any]] = []
    if scope is None:
        links = list(TraceLink.objects.filter(product=product).values_list("source_id", "target_id", "kind", "suspect"))
    else:
        records, results, links, outside_scope = _within_scope(scope, records, results)
    change_links = list(
        ChangeRequestItem.objects.filter(item__product=product).values_list(
            "item_id", "change_request_id", "change_request__state", "change_request__title"
        )
    )
    commits = list(_commits(product=product, artifact_ids=artifact_ids))
    change_request_ids = set(ChangeRequest.objects.filter(product=product).values_list("pk", flat=True))

    # 2. Join in Python.
    identifier_of = {record[0]: record[2] for record in records}
    upstream_rcs: dict[int, list[int]] = defaultdict(list)  # requirement pk -> risk controls it implements
    hazards_of_rc: dict[int, list[int]] = defaultdict(list)
    parents: dict[int, list[int]] = defaultdict(list)
    suspect_items: set[int] = set()
    for source, target, kind, suspect in links:
        if kind == TraceLink.Kind.IMPLEMENTS:
            upstream_rcs[target].append(source)
        elif kind == TraceLink.Kind.MITIGATES:
            hazards_of_rc[source].append(target)
        elif kind == TraceLink.Kind.DERIVES_FROM:
            parents[source].append(target)
        if suspect:
            suspect_items.update((source, target))
    crs_of: dict[int, list[dict]] = defaultdict(list)
    for item_pk, cr_pk, state, title in change_links:
        crs_of[item_pk].append({"id": f"CR-{cr_pk}", "state": state, "title": title})

    # Records come by pk, so when two IDs differ only by case the newest item wins, as in the results query.
    identifiers = {identifier.upper(): pk for pk, identifier in identifier_of.items()}
    prefixes: set[str] | None = None  # the product's ID prefixes: only a reference to an unknown ID needs them
    commits_of: dict[int, list[str]] = defaultdict(list)
    unknown_in_commits: list[dict[str, Any]] = []
    for sha, message in commits:
        unknown = []
        for match in REFERENCE.finditer(message or ""):
            reference = f"{match.group(1).upper()}-{match.group(2)}"
            if reference in identifiers:
                if sha[:12] not in commits_of[identifiers[reference]]:
                    commits_of[identifiers[reference]].append(sha[:12])
            elif match.group(1).upper() == "CR":
                if int(match.group(2)) not in change_request_ids:
                    unknown.append(reference)
            else:
                if prefixes is None:
                    prefixes = {m.group(1) for identifier in identifiers if (m := REFERENCE.fullmatch(identifier))}
                if match.group(1).upper() in prefixes:
                    unknown.append(reference)
        if unknown:
            unknown_in_commits.append({"sha": sha[:12], "unknown": sorted(set(unknown))})

    orphans: dict[tuple[str, str], list[str]] = defaultdict(list)
    for requirement, test_name, status in orphan_results:
        orphans[(test_name, status)].append(requirement)

    requirements = [record for record in records if is_traced_requirement(record[1], record[5], record[6])]
    requirements.sort(key=lambda record: _natural(record[2]))
    # Most requirements implement one risk control: its ID and hazards are worked out once, not once per row.
    hazard_ids_of_rc = {
        rc: _sorted_ids({identifier_of[h] for h in hazards if h in identifier_of})
        for rc, hazards in hazards_of_rc.items()
    }
    # A row's gaps, status and severity follow from three facts; the few combinations are worked out once, and the
    # counts are taken per combination rather than per row.
    shapes: dict[tuple, tuple] = {}
    rows_per_shape: dict[tuple, int] = defaultdict(int)
    rows = []
    verified_by_tests: set[int] = set()
    no_tests = ([], False, False)
    for pk, _kind, identifier, title, version, status, _spec in requirements:
        tests, executed, failing = results.get(pk, no_tests)
        if not tests:
            result, tests = "", []
        elif failing:
            result = "failed"
        elif not executed:
            result = "not_executed"
        else:
            result = "passed"
            verified_by_tests.add(pk)
        rcs = upstream_rcs.get(pk)
        key = (result, rcs is not None and result != "passed", pk in suspect_items)
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = _row_shape(*key, severities=severities)
        rows_per_shape[key] += 1
        gaps, row_status, severity = shape
        if rcs is None:
            risk_controls, hazards = [], []
        elif len(rcs) == 1:
            risk_controls = [identifier_of[rcs[0]]] if rcs[0] in identifier_of else []
            hazards = list(hazard_ids_of_rc.get(rcs[0], ()))
        else:
            risk_controls = _sorted_ids([identifier_of[rc] for rc in rcs if rc in identifier_of])
            hazards = _sorted_ids({h for rc in rcs for h in hazard_ids_of_rc.get(rc, ())})
        derives_from = parents.get(pk)
        change_requests = crs_of.get(pk)
        rows.append(
            {
                "id": identifier,
                "title": title,
                "version": version,
                "item_status": status,
                "risk_controls": risk_controls,
                "hazards": hazards,
                "derives_from": _sorted_ids([identifier_of[p] for p in derives_from if p in identifier_of])
                if derives_from
                else [],
                "change_requests": _by_number(change_requests) if change_requests else [],
                "commits": commits_of.get(pk, []),
                "tests": tests,
                "result": result,
                "status": row_status,
                "severity": severity,
                "gaps": [{"gap": gap, "severity": gap_severity} for gap, gap_severity in gaps],
            }
        )

    # Risk controls: verified when at least one requirement implements them and every one of those passed.
    implemented_by: dict[int, list[int]] = defaultdict(list)
    for requirement_pk, rcs in upstream_rcs.items():
        for rc in rcs:
            implemented_by[rc].append(requirement_pk)
    unverified_severity = severities.get("risk_control_unverified", "error")
    risk_controls = []
    for pk, kind, identifier, title, version, _status, _spec in records:
        if kind != TraceItem.Kind.RISK_CONTROL:
            continue
        requirements_of = implemented_by.get(pk, [])
        verified = bool(requirements_of) and verified_by_tests.issuperset(requirements_of)
        risk_controls.append(
            {
                "id": identifier,
                "title": title,
                "version": version,
                "hazards": _sorted_ids([identifier_of[h] for h in hazards_of_rc.get(pk, ()) if h in identifier_of]),
                "requirements": _sorted_ids([identifier_of[r] for r in requirements_of]),
                "verified": verified,
                "severity": "" if verified else unverified_severity,
            }
        )
    risk_controls.sort(key=lambda rc: _natural(rc["id"]))
    orphan_severity = severities.get("orphan_test", "warning")
    orphan_tests = [
        {"name": name, "result": status, "unknown_ids": sorted(set(ids)), "severity": orphan_severity}
        for (name, status), ids in sorted(orphans.items())
    ]

    counts = dict.fromkeys(TRACE_GAPS, 0)
    severities_seen = defaultdict(int)
    counts[VERIFIED] = 0
    for key, number in rows_per_shape.items():
        gaps, row_status, severity = shapes[key]
        for gap, _severity in gaps:
            counts[gap] += number
        counts[VERIFIED] += number if row_status == VERIFIED else 0
        severities_seen[severity] += number
    counts["orphan_test"] = len(orphan_tests)
    counts["requirements"] = len(rows)
    counts["risk_controls"] = len(risk_controls)
    counts["risk_controls_verified"] = sum(1 for rc in risk_controls if rc["verified"])
    for orphan in orphan_tests:
        severities_seen[orphan["severity"]] += 1
    for rc in risk_controls:
        if not rc["requirements"]:
            severities_seen[rc["severity"]] += 1
    counts["errors"] = severities_seen["error"]
    counts["warnings"] = severities_seen["warning"]
    coverage = round(100.0 * len(verified_by_tests) / len(rows), 1) if rows else 0.0
    return {
        "product": product.key,
        "basis": _basis(scope),
        "outside_scope": outside_scope,
        "artifact_ids": artifact_ids,
        "coverage": coverage,
        "counts": counts,
        "severities": severities,
        "rows": rows,
        "risk_controls": risk_controls,
        "orphan_tests": orphan_tests,
        "unknown_references": {"commits": unknown_in_commits},
    }


def _basis(scope: ReleaseScope | None) -> dict[str, Any]:
    """What a matrix judges, in words its pages and API print."""
    if scope is None:
        return {"scope": "product", "description": "the current requirements against the latest results"}
    return {
        "scope": "release",
        "release": scope.release_version,
        "frozen_at": scope.frozen_at.isoformat(),
        "items": len(scope.items),
        "description": (
            f"the scope of release {scope.release_version} (the items in force when it froze on "
            f"{scope.frozen_at:%Y-%m-%d %H:%M} UTC, at their versions then) against its own evidence"
        ),
    }


def _within_scope(scope: ReleaseScope, records: list, results: dict) -> tuple[list, dict, list, list]:
    """Narrow the product's items to a release's scope, at the versions it froze with.

    Returns the scoped records (title, version and status as frozen), the results judged against the frozen versions
    (a result counts when obtained after the version the release froze with, not the current one), the links as they
    were at the freeze (by current pk), and the in-force items the scope does not hold at their current version.
    """
    by_identifier = {record[2].upper(): record for record in records}
    scoped, outside = [], []
    for record in records:
        pk, kind, identifier, _title, version, status, spec = record
        item = scope.item(identifier)
        if item is None or by_identifier[identifier.upper()][0] != pk:
            if in_force(status):
                outside.append({"id": identifier, "kind": kind, "version": version, "scoped_version": None})
            continue
        scoped.append((pk, kind, identifier, item.title, item.version, item.status, spec))
        if version != item.version:
            outside.append({"id": identifier, "kind": kind, "version": version, "scoped_version": item.version})
    frozen_at = _version_times({record[0]: record[4] for record in scoped})
    scoped_pks = {record[0] for record in scoped}
    judged = {}
    for pk, (tests, executed, failing) in results.items():
        if pk not in scoped_pks:
            continue
        since = frozen_at.get(pk)
        if since is None:  # no record of the frozen version's time: the product's own judgement stands
            judged[pk] = (tests, executed, failing)
            continue
        tests = [{**test, "counts": test["at"] is not None and test["at"] >= since} for test in tests]
        counted = [test["result"] for test in tests if test["counts"] and test["result"] != _SKIPPED]
        judged[pk] = (tests, bool(counted), any(result in FAILING for result in counted))
    pk_of = {identifier: record[0] for identifier, record in by_identifier.items()}
    links = [
        (pk_of[source.upper()], pk_of[target.upper()], kind, suspect)
        for source, kind, target, suspect in scope.links
        if source.upper() in pk_of and target.upper() in pk_of
    ]
    outside.sort(key=lambda row: _natural(row["id"]))
    return scoped, judged, links, outside


def _version_times(versions: dict[int, int]) -> dict[int, datetime]:
    """When each item's given version was made: results obtained before it do not count for it."""
    wanted = set(versions.items())
    return {
        item_pk: created_at
        for item_pk, version, created_at in TraceItemVersion.objects.filter(item_id__in=list(versions)).values_list(
            "item_id", "version", "created_at"
        )
        if (item_pk, version) in wanted
    }


def _row_shape(result: str, control_unverified: bool, suspect: bool, *, severities) -> tuple:
    """((gap, severity), ...), status and worst non-ignored severity of a row with these facts."""
    gaps = []
    if result in ("", "failed", "not_executed"):
        gaps.append({"": "missing_test"}.get(result, result))
    if control_unverified:
        gaps.append("risk_control_unverified")
    if suspect:
        gaps.append("suspect")
    pairs = tuple((gap, severities.get(gap, "error")) for gap in gaps)
    status = next((gap for gap in GAP_PRECEDENCE if gap in gaps), VERIFIED)
    return pairs, status, _worst(severity for _gap, severity in pairs if severity != "ignored")


def _by_number(change_requests: list[dict]) -> list[dict]:
    return change_requests if len(change_requests) < 2 else sorted(change_requests, key=lambda cr: int(cr["id"][3:]))


def _sorted_ids(identifiers: list[str] | set[str]) -> list[str]:
    """IDs in natural order; most lists here hold zero or one ID, so those skip the sort."""
    return list(identifiers) if len(identifiers) < 2 else sorted(identifiers, key=_natural)


@lru_cache(maxsize=65536)
def _natural(identifier: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", identifier))


def filter_rows(rows: list[dict], *, status: str = "", severity: str = "", q: str = "") -> list[dict]:
    """The rows a page or API caller asked for (`status` may be `gaps` for every row with a gap)."""
    selected = rows
    if status == "gaps":
        selected = [row for row in selected if row["status"] != VERIFIED]
    elif status:
        selected = [row for row in selected if row["status"] == status or any(g["gap"] == status for g in row["gaps"])]
    if severity:
        selected = [row for row in selected if row["severity"] == severity]
    if q:
        needle = q.lower()
        selected = [row for row in selected if needle in row["id"].lower() or needle in row["title"].lower()]
    return selected


def as_csv_rows(matrix: dict[str, Any]) -> list[list[str]]:
    """The matrix as spreadsheet rows (header first), one requirement per row."""
    header = [
        "id",
        "title",
        "version",
        "status",
        "severity",
        "gaps",
        "risk_controls",
        "hazards",
        "change_requests",
        "commits",
        "tests",
        "result",
    ]
    out = [header]
    for row in matrix["rows"]:
        out.append(
            [
                row["id"],
                row["title"],
                str(row["version"]),
                row["status"],
                row["severity"],
                "; ".join(g["gap"] for g in row["gaps"]),
                "; ".join(row["risk_controls"]),
                "; ".join(row["hazards"]),
                "; ".join(cr["id"] for cr in row["change_requests"]),
                "; ".join(row["commits"]),
                "; ".join(f"{t['name']}={t['result']}{'' if t['counts'] else ' (stale)'}" for t in row["tests"]),
                row["result"],
            ]
        )
    return out
