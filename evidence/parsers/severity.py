"""Severity ratings of vulnerability findings: scanners' words and CVSS scores, as critical/high/medium/low."""

from __future__ import annotations

from typing import Any

from cvss import CVSS2, CVSS3, CVSS4, CVSSError

from evidence.parsers.base import clean_text

SEVERITIES = ("critical", "high", "medium", "low", "unknown")

_SEVERITY_RANK = {"unknown": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
SEVERITY_WORDS = {
    "critical": "critical",
    "high": "high",
    "important": "high",  # Red Hat's word for high
    "medium": "medium",
    "moderate": "medium",  # GitHub advisories and Red Hat
    "low": "low",
    "negligible": "low",  # Grype/Debian
    "minor": "low",
    # "none"/"info" state a minimal severity; "unknown" would mean nobody assessed it.
    "none": "low",
    "info": "low",
    "informational": "low",
}


def severity_from_word(word: Any) -> str:
    """Normalise a scanner's severity word (Critical, HIGH, Moderate, Negligible…) to our five levels."""
    return SEVERITY_WORDS.get(clean_text(word).strip().lower(), "unknown")


def severity_from_score(score: float | None) -> str:
    """The CVSS v3 qualitative rating of a score; 0 is "unknown" because tools write 0 for "not scored"."""
    if score is None:
        return "unknown"
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0:
        return "low"
    return "unknown"


def score_from_cvss_vector(vector: str) -> float | None:
    """The base score of a CVSS v2, v3.x or v4.0 vector; None when the vector cannot be read."""
    vector = clean_text(vector).strip()
    try:
        if vector.startswith("CVSS:4"):
            return float(CVSS4(vector).base_score)
        if vector.startswith("CVSS:3"):
            return float(CVSS3(vector).base_score)
        if vector:
            return float(CVSS2(vector).base_score)
    except (CVSSError, ValueError, KeyError, IndexError):
        # A malformed vector in an advisory should not reject the whole scan: the score stays unknown.
        return None
    return None


def highest_severity(severities: list[str]) -> str:
    return max(severities, key=_SEVERITY_RANK.__getitem__, default="unknown")


def combined_severity(word_severity: str, score: float | None) -> str:
    return word_severity if word_severity != "unknown" else severity_from_score(score)
