"""VEX: which vulnerability findings a signed statement says do not apply, and applying that to an artifact.

The VEX parsers (evidence/parsers/openvex.py, cyclonedx_vulns.py) read statements; this module decides what they
suppress (`vex_suppresses`, a pure function) and keeps each artifact's findings in step (`vex_apply`, a write).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from packageurl import PackageURL

from changecontrol import audit
from evidence.models import Artifact, Evidence, VexStatement, Vulnerability
from evidence.parsers import results


def _purl_covers(statement_purl: str, found_purl: str) -> bool:
    """Does the statement's purl name the scanner's package?

    Type, namespace and name must be equal. A version in the statement must equal the package's; a
    versionless statement covers every version. Qualifiers written on both sides must agree (so
    `?arch=x86_64` does not cover arm64), but one written on one side only is ignored: scanners add
    `distro=…` and VEX authors add `type=jar` that the other side does not write.
    """
    try:
        stated = PackageURL.from_string(statement_purl)
        found = PackageURL.from_string(found_purl)
    except ValueError:
        return False
    if (stated.type, stated.namespace, stated.name) != (found.type, found.namespace, found.name):
        return False
    if stated.version and stated.version != found.version:
        return False
    stated_qualifiers = stated.qualifiers if isinstance(stated.qualifiers, dict) else {}
    found_qualifiers = found.qualifiers if isinstance(found.qualifiers, dict) else {}
    return all(found_qualifiers[key] == value for key, value in stated_qualifiers.items() if key in found_qualifiers)


def _names_artifact(product: str, artifact_identifiers: frozenset[str]) -> bool:
    """Does a statement product name the scanned artifact itself (its digest, purl or bom-ref)?"""
    if product in artifact_identifiers:
        return True
    if product.startswith("pkg:"):
        try:
            version = PackageURL.from_string(product).version or ""
        except ValueError:
            return False
        # pkg:oci/nginx@sha256%3A13d2… names an image by its digest.
        return version.lower() in artifact_identifiers
    return False


def vex_suppresses(
    *, statement: results.VexStatement, vulnerability: results.Vulnerability, artifact_identifiers: Collection[str] = ()
) -> bool:
    """True when the statement says this finding does not apply (status not_affected or fixed).

    The ids match by id or alias. The product matches when the statement has no products (document-wide),
    names the vulnerable package's purl (see _purl_covers), or names the scanned artifact itself: pass its
    digest (`sha256:<hex>`), purl or bom-ref in artifact_identifiers, as an image-level OpenVEX statement
    (`pkg:oci/nginx@sha256:…`) covers every package inside that image.
    """
    if statement.status not in results.SUPPRESSING_VEX_STATUSES:
        return False
    stated_ids = {i.upper() for i in (statement.vuln_id, *statement.aliases)}
    found_ids = {i.upper() for i in (vulnerability.vuln_id, *vulnerability.aliases)}
    if not stated_ids & found_ids:
        return False
    if not statement.products:  # a statement about the whole document's subject
        return True
    artifacts = frozenset(i.strip() for i in artifact_identifiers) | frozenset(
        i.strip().lower() for i in artifact_identifiers
    )
    for product in statement.products:
        if artifacts and _names_artifact(product, artifacts):
            return True
        if vulnerability.purl and (
            product == vulnerability.purl or (product.startswith("pkg:") and _purl_covers(product, vulnerability.purl))
        ):
            return True
    return False


# ---------------------------------------------------------------- applying VEX to an artifact


def artifact_identifiers(artifact: Artifact) -> list[str]:
    """What an image-level statement may call the artifact: its digest, the bare hex, its URI."""
    return [artifact.digest, artifact.digest.split(":", 1)[1]] + ([artifact.uri] if artifact.uri else [])


def signed_statements(artifact: Artifact) -> list[tuple[VexStatement, results.VexStatement]]:
    """The artifact's VEX statements that count (parsed AND signed by a registered key), stored and as parsed."""
    rows = VexStatement.objects.filter(
        artifact=artifact, evidence__state=Evidence.State.PARSED, evidence__verdict=Evidence.Verdict.SIGNED
    ).order_by("id")
    return [
        (
            row,
            results.VexStatement(
                vuln_id=row.vuln_id,
                aliases=tuple(row.aliases),
                products=tuple(row.products),
                status=row.status,
                justification=row.justification,
                impact_statement=row.impact_statement,
                timestamp=None,
            ),
        )
        for row in rows
    ]


def vex_apply(artifact: Artifact) -> int:
    """Re-decide which of the artifact's vulnerabilities a signed VEX statement suppresses; returns how many.

    Only VEX from evidence that was parsed AND signed by a registered key counts (issue 3, item 4).
    Runs inside the caller's transaction (a new scan or a new VEX document).
    """
    identifiers = artifact_identifiers(artifact)
    parsed = signed_statements(artifact)
    changed = 0
    suppressed = 0
    vulnerabilities = Vulnerability.objects.filter(artifact=artifact, evidence__state=Evidence.State.PARSED)
    for vulnerability in vulnerabilities.only("id", "vuln_id", "aliases", "purl", "suppressed_by_id"):
        finding = results.Vulnerability(
            vuln_id=vulnerability.vuln_id,
            aliases=tuple(vulnerability.aliases),
            package_name="",
            package_version="",
            purl=vulnerability.purl,
            severity="unknown",
            cvss_score=None,
            fix_state="unknown",
            fixed_versions=(),
            title="",
            source_tool="",
        )
        # The latest statement about a finding wins (a later "affected" overrides an earlier "not_affected").
        decision = None
        for row, statement in parsed:
            stated = {i.upper() for i in (statement.vuln_id, *statement.aliases)}
            if not stated & {i.upper() for i in (finding.vuln_id, *finding.aliases)}:
                continue
            if vex_suppresses(statement=statement, vulnerability=finding, artifact_identifiers=identifiers):
                decision = row.pk
            elif statement.status in ("affected", "under_investigation") and _statement_names(
                statement, finding, identifiers
            ):
                decision = None
        if decision is not None:
            suppressed += 1
        if decision != vulnerability.suppressed_by_id:
            Vulnerability.objects.filter(pk=vulnerability.pk).update(suppressed_by_id=decision)
            changed += 1
    if changed:
        audit.record(
            actor=None,
            action="vulnerabilities.vex_applied",
            obj=artifact,
            after={"suppressed": suppressed, "changed": changed, "statements": len(parsed)},
            object_human_id=artifact.digest,
        )
    return suppressed


def _statement_names(statement, finding, identifiers) -> bool:
    """Does a non-suppressing statement speak about this finding (so it overrides an earlier suppression)?"""
    return _suppresses_as(dataclasses.replace(statement, status="not_affected"), finding, identifiers)


def _suppresses_as(statement, finding, identifiers) -> bool:
    return vex_suppresses(statement=statement, vulnerability=finding, artifact_identifiers=identifiers)
