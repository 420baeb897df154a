"""Continuous vulnerability monitoring (FDA FD&C Act §524B post-market cybersecurity): OSV advisories from files.

`osv_import` stores the advisories of a directory or archive of OSV JSON (no network needed), matches each one
against the SBOM components of released artifacts running now in any environment (deployments and snapshots,
as the affected-release search sees them), opens one finding per newly affected (release, artifact, advisory),
audits it and raises a `vulnerability` alert per product. A signed VEX statement (evidence that counts and is
signed; `evidence.vex.vex_suppresses` decides) with not_affected or fixed for the advisory closes the finding:
`advisory_findings_close_by_vex` runs after every import and periodically (runtime.tasks).

Matching (OSV schema 1.x): `affected[].package` names the package by purl or by ecosystem and name (mapped to
a purl type below); a component version is affected when it is listed in `versions[]`, or falls in a SEMVER or
ECOSYSTEM range — at or after an `introduced` event and before the next `fixed` (or at or before the next
`last_affected`). GIT ranges name commits, not versions, and are not matched. Withdrawn advisories match nothing.
"""

from __future__ import annotations

import functools
import operator
import tarfile
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from packageurl import PackageURL

from alerts.models import EventKind
from alerts.services import alert_raise
from approvals.models import Release
from changecontrol import audit
from changecontrol.models import Product, User
from common.canonical import canonical_sha256
from common.errors import ValidationFailed
from common.safe_formats import UnreadableDocument, parse_json
from common.times import parse_timestamp
from evidence.models import SbomComponent, VexStatement
from evidence.parsers import results
from evidence.vex import artifact_identifiers, signed_statements, vex_suppresses
from runtime.affected import component_version, package_filter, running_environments
from runtime.models import Advisory, AdvisoryFinding
from runtime.versions import compare

MAX_RECORD_BYTES = 5 * 1024 * 1024
MAX_RECORDS = 200_000
# OSV ecosystems → purl types (purl-spec PURL-TYPES); an ecosystem not listed matches only by its purl.
ECOSYSTEM_PURL_TYPES = {
    "pypi": "pypi",
    "npm": "npm",
    "maven": "maven",
    "go": "golang",
    "crates.io": "cargo",
    "rubygems": "gem",
    "nuget": "nuget",
    "packagist": "composer",
    "hex": "hex",
    "pub": "pub",
    "swifturl": "swift",
    "debian": "deb",
    "alpine": "apk",
}


# ---------------------------------------------------------------- reading files


def read_records(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every .json file in a directory (recursively), a .zip, a .tar.gz / .tgz, or one file."""
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            yield str(file.relative_to(path)), _bounded(file.read_bytes(), str(file))
        return
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir() and info.filename.lower().endswith(".json"):
                    if info.file_size > MAX_RECORD_BYTES:
                        raise ValidationFailed(f"{info.filename}: larger than {MAX_RECORD_BYTES} bytes")
                    yield info.filename, archive.read(info)
        return
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile() and member.name.lower().endswith(".json"):
                    if member.size > MAX_RECORD_BYTES:
                        raise ValidationFailed(f"{member.name}: larger than {MAX_RECORD_BYTES} bytes")
                    handle = archive.extractfile(member)
                    yield member.name, handle.read() if handle is not None else b""
        return
    if name.endswith(".json"):
        yield path.name, _bounded(path.read_bytes(), path.name)
        return
    raise ValidationFailed(f"{path.name}: give a directory, a .zip, a .tar.gz or a .json file of OSV records")


def _bounded(data: bytes, name: str) -> bytes:
    if len(data) > MAX_RECORD_BYTES:
        raise ValidationFailed(f"{name}: larger than {MAX_RECORD_BYTES} bytes")
    return data


def parse_record(name: str, data: bytes) -> dict:
    """One OSV record, checked for what matching needs; a bad one is refused naming the file and the field."""
    try:
        record = parse_json(data)
    except UnreadableDocument as error:
        raise ValidationFailed(f"{name}: {error}") from None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"].strip():
        raise ValidationFailed(f"{name}: not an OSV record (an object with a string `id`)")
    for key in ("aliases", "affected"):
        if not isinstance(record.get(key, []), list):
            raise ValidationFailed(f"{name}: `{key}` must be a list")
    for n, affected in enumerate(record.get("affected", [])):
        if not isinstance(affected, dict) or not isinstance(affected.get("package", {}), dict):
            raise ValidationFailed(f"{name}: affected[{n}] must be an object with a `package` object")
        if not isinstance(affected.get("ranges", []), list) or not isinstance(affected.get("versions", []), list):
            raise ValidationFailed(f"{name}: affected[{n}].ranges and .versions must be lists")
    return record


# ---------------------------------------------------------------- matching (pure)


def package_base(package: dict) -> str:
    """The purl (type/namespace/name, no version) an OSV package names, or "" when it cannot be named."""
    purl = package.get("purl")
    if isinstance(purl, str) and purl.startswith("pkg:"):
        try:
            parsed = PackageURL.from_string(purl)
        except ValueError:
            return ""
        return PackageURL(type=parsed.type, namespace=parsed.namespace, name=parsed.name).to_string()
    ecosystem = str(package.get("ecosystem") or "").split(":", 1)[0].strip().lower()
    name = str(package.get("name") or "").strip()
    purl_type = ECOSYSTEM_PURL_TYPES.get(ecosystem)
    if not purl_type or not name:
        return ""
    namespace = None
    if purl_type == "maven" and ":" in name:
        namespace, name = name.split(":", 1)
    elif "/" in name and purl_type in ("npm", "golang", "composer"):
        namespace, name = name.rsplit("/", 1)
    if purl_type == "pypi":
        name = name.lower().replace("_", "-")
    return PackageURL(type=purl_type, namespace=namespace, name=name).to_string()


def _in_range(version: str, events: list) -> bool:
    """OSV's evaluation of one SEMVER / ECOSYSTEM range: introduced opens, fixed and last_affected close."""
    affected = False
    for event in events:
        if not isinstance(event, dict):
            continue
        if "introduced" in event:
            bound = str(event["introduced"])
            if bound == "0" or compare(version, ">=", bound):
                affected = True
        elif (
            "fixed" in event
            and compare(version, ">=", str(event["fixed"]))
            or "last_affected" in event
            and compare(version, ">", str(event["last_affected"]))
        ):
            affected = False
    return affected


def version_affected(version: str, affected: dict) -> bool:
    """Does this affected[] entry cover the version (by its versions list or one of its ranges)?"""
    if not version:
        return False
    if version in [str(v) for v in affected.get("versions", [])]:
        return True
    for version_range in affected.get("ranges", []):
        if not isinstance(version_range, dict) or version_range.get("type") not in ("SEMVER", "ECOSYSTEM"):
            continue
        events = version_range.get("events", [])
        if isinstance(events, list) and _in_range(version, events):
            return True
    return False


# ---------------------------------------------------------------- writes


@dataclass
class ImportResult:
    """What one import did."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    findings_opened: list[AdvisoryFinding] = field(default_factory=list)
    findings_closed: int = 0


def _advisory_upsert(record: dict, result: ImportResult, *, actor: User | None) -> Advisory | None:
    """Store the record; None when the stored one is the same or newer (an older copy never replaces it)."""
    sha256 = canonical_sha256(record)
    modified = _moment(record.get("modified"))
    fields = {
        "aliases": [str(a) for a in record.get("aliases", []) if isinstance(a, str)][:200],
        "summary": str(record.get("summary") or "")[:2000],
        "modified": modified,
        "withdrawn": _moment(record.get("withdrawn")),
        "document": record,
        "sha256": sha256,
        "imported_at": timezone.now(),
        "packages": sorted(
            {base for a in record.get("affected", []) if (base := package_base(a.get("package") or {}))}
        ),
    }
    advisory = Advisory.objects.select_for_update().filter(osv_id=record["id"]).first()
    if advisory is None:
        advisory = Advisory.objects.create(osv_id=record["id"], **fields)
        result.created += 1
    elif advisory.sha256 == sha256 or (advisory.modified and modified and modified < advisory.modified):
        result.unchanged += 1
        return advisory if advisory.withdrawn is None else None
    else:
        for key, value in fields.items():
            setattr(advisory, key, value)
        advisory.save()
        result.updated += 1
    audit.record(
        actor=actor,
        action="advisory.imported",
        obj=advisory,
        after={"osv_id": advisory.osv_id, "aliases": advisory.aliases, "modified": modified, "sha256": sha256},
        product_key="",
        object_human_id=advisory.osv_id,
    )
    return advisory if advisory.withdrawn is None else None


def _moment(value):
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, ValidationFailed):
        return None


def _matches(advisory: Advisory, artifact_ids: set[int] | None = None) -> dict[int, list[dict]]:
    """artifact id → the components of its counting SBOMs the advisory affects (any artifact, running or not)."""
    by_base: dict[str, list[dict]] = defaultdict(list)
    for affected in advisory.document.get("affected", []):
        base = package_base(affected.get("package") or {})
        if base:
            by_base[base].append(affected)
    hits: dict[int, list[dict]] = defaultdict(list)
    for base, entries in by_base.items():
        components = SbomComponent.objects.counting().filter(package_filter(base))
        if artifact_ids is not None:
            components = components.filter(artifact_id__in=artifact_ids)
        for component in components.values("artifact_id", "name", "version", "purl"):
            version = component_version(component)
            if any(version_affected(version, entry) for entry in entries):
                hits[component["artifact_id"]].append(
                    {"name": component["name"], "version": version, "purl": component["purl"]}
                )
    return hits


def _findings_open(advisory: Advisory, result: ImportResult, artifact_ids: set[int] | None = None) -> None:
    hits = _matches(advisory, artifact_ids)
    running = running_environments(set(hits))
    releases_of = defaultdict(list)
    for artifact_id, release_id, product_id in (
        Release.artifacts.through.objects.filter(artifact_id__in=list(running))
        .values_list("artifact_id", "release_id", "release__product_id")
        .order_by("release_id")
    ):
        releases_of[artifact_id].append((release_id, product_id))
    for artifact_id, places in running.items():
        for release_id, product_id in releases_of[artifact_id]:
            finding, created = AdvisoryFinding.objects.get_or_create(
                release_id=release_id,
                artifact_id=artifact_id,
                advisory=advisory,
                defaults={"product_id": product_id, "components": hits[artifact_id], "environments": places},
            )
            if created:
                audit.record(
                    actor=None,
                    action="advisory_finding.opened",
                    obj=finding,
                    after={
                        "advisory": advisory.osv_id,
                        "aliases": advisory.aliases,
                        "release": release_id,
                        "components": finding.components,
                        "environments": places,
                    },
                    product_key=Product.objects.get(pk=product_id).key,
                )
                result.findings_opened.append(finding)


def _alert(findings: list[AdvisoryFinding]) -> None:
    by_product: dict[int, list[AdvisoryFinding]] = defaultdict(list)
    for finding in findings:
        by_product[finding.product_id].append(finding)
    for product_id, product_findings in by_product.items():
        product = Product.objects.get(pk=product_id)
        advisories = sorted({f.advisory.osv_id for f in product_findings})
        alert_raise(
            product=product,
            event_kind=EventKind.VULNERABILITY,
            subject=f"{product.key}: {len(product_findings)} running release(s) affected by {', '.join(advisories[:5])}",
            body={
                "findings": [
                    {
                        "id": f.human_id,
                        "advisory": f.advisory.osv_id,
                        "aliases": f.advisory.aliases,
                        "release": f.release.version,
                        "artifact": f.artifact.digest,
                        "components": f.components,
                        "environments": f.environments,
                    }
                    for f in product_findings
                ]
            },
            dedupe_key="vulnerability:" + ",".join(str(f.pk) for f in product_findings)[:180],
        )


@transaction.atomic
def osv_import(*, records: list[tuple[str, bytes]], actor: User | None = None) -> ImportResult:
    """Store the advisories, open findings for running releases they newly affect, alert, close what VEX covers.

    1. every record is parsed first: one bad file refuses the whole import (nothing half-written);
    2. each advisory is stored (created, replaced by a newer `modified`, or left as it is);
    3. each stored, not withdrawn advisory is matched against the SBOMs of released artifacts running now;
    4. one finding per new (release, artifact, advisory), audited; one alert per product;
    5. open findings a signed VEX statement covers are closed.
    """
    if len(records) > MAX_RECORDS:
        raise ValidationFailed(f"at most {MAX_RECORDS} OSV records per import, not {len(records)}")
    parsed = [parse_record(name, data) for name, data in records]
    result = ImportResult(read=len(parsed))
    for record in parsed:
        advisory = _advisory_upsert(record, result, actor=actor)
        if advisory is not None:
            _findings_open(advisory, result)
    if result.findings_opened:
        _alert(result.findings_opened)
    result.findings_closed = advisory_findings_close_by_vex()
    return result


@transaction.atomic
def advisories_match_artifacts(*, artifact_ids: list[int]) -> list[AdvisoryFinding]:
    """Match every stored advisory against artifacts that started running (a deployment or a snapshot named them).

    Monitoring is continuous both ways: an import matches new advisories against what runs, and this matches what
    newly runs against the advisories already imported (by the purls they name, a GIN lookup).
    """
    ids = set(artifact_ids)
    bases = set()
    for purl in (
        SbomComponent.objects.counting().filter(artifact_id__in=ids).exclude(purl="").values_list("purl", flat=True)
    ):
        try:
            parsed = PackageURL.from_string(purl)
        except ValueError:
            continue
        bases.add(PackageURL(type=parsed.type, namespace=parsed.namespace, name=parsed.name).to_string())
    if not bases:
        return []
    result = ImportResult()
    for base_chunk in (sorted(bases)[n : n + 500] for n in range(0, len(bases), 500)):
        candidates = Advisory.objects.filter(withdrawn__isnull=True).filter(
            functools.reduce(operator.or_, (Q(packages__contains=[base]) for base in base_chunk))
        )
        for advisory in candidates.order_by("osv_id"):
            _findings_open(advisory, result, ids)
    if result.findings_opened:
        _alert(result.findings_opened)
    return result.findings_opened


def advisory_findings_close_by_vex() -> int:
    """Close every open finding a signed VEX statement (not_affected / fixed) covers; returns how many."""
    closed = 0
    open_findings = AdvisoryFinding.objects.filter(state=AdvisoryFinding.State.OPEN).select_related(
        "advisory", "artifact", "product"
    )
    for finding in open_findings.select_for_update(of=("self",)):
        statement = _covering_statement(finding)
        if statement is None:
            continue
        finding.state = AdvisoryFinding.State.CLOSED
        finding.closed_at = timezone.now()
        finding.closed_by = statement
        finding.save(update_fields=["state", "closed_at", "closed_by"])
        audit.record(
            actor=None,
            action="advisory_finding.closed",
            obj=finding,
            after={"advisory": finding.advisory.osv_id, "vex_statement": statement.pk, "status": statement.status},
            product_key=finding.product.key,
        )
        closed += 1
    return closed


def _covering_statement(finding: AdvisoryFinding) -> VexStatement | None:
    identifiers = artifact_identifiers(finding.artifact)
    for row, statement in signed_statements(finding.artifact):
        # Every affected component must be covered: a statement about one package does not clear another.
        if all(
            vex_suppresses(
                statement=statement, vulnerability=_as_finding(finding, component), artifact_identifiers=identifiers
            )
            for component in finding.components
        ):
            return row
    return None


def _as_finding(finding: AdvisoryFinding, component: dict) -> results.Vulnerability:
    return results.Vulnerability(
        vuln_id=finding.advisory.osv_id,
        aliases=tuple(finding.advisory.aliases),
        package_name=component["name"],
        package_version=component["version"],
        purl=component["purl"],
        severity="unknown",
        cvss_score=None,
        fix_state="unknown",
        fixed_versions=(),
        title=finding.advisory.summary,
        source_tool="osv-import",
    )


def records_from(path: str) -> list[tuple[str, bytes]]:
    """Every OSV record under a path (see read_records); an unreadable archive is a clear refusal."""
    target = Path(path)
    if not target.exists():
        raise ValidationFailed(f"{path}: no such file or directory")
    try:
        return list(read_records(target))
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as error:
        raise ValidationFailed(f"{target.name}: cannot read it as an archive of OSV records ({error})") from None
