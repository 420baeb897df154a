"""Test vectors that pin the bytes of the one canonical JSON encoding (common/canonical.py).

Every audit-chain hash, signature content hash, release manifest, decision and bundle manifest ever written is
re-checked against these bytes, by `verify_audit` and by `custody verify-bundle` on an auditor's laptop: a change
here would make intact records look tampered with. Change these vectors only with a migration of every hash.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import PurePosixPath

import pytest

from changecontrol import audit
from changecontrol.models import AuditEvent
from common.canonical import canonical_json, canonical_sha256, jsonable

VALUE = {
    "b": 1,
    "a": [1, 2.5, {"d": None, "c": "Zoë — 7.2.4…", "e": True}],
    "at": datetime(2026, 1, 31, 9, 30, tzinfo=UTC),
    "n": Decimal("0.80"),
    "s": {"y", "x"},
    "t": ("p", "q"),
}
BYTES = (
    b'{"a":[1,2.5,{"c":"Zo\xc3\xab \xe2\x80\x94 7.2.4\xe2\x80\xa6","d":null,"e":true}],'
    b'"at":"2026-01-31T09:30:00+00:00","b":1,"n":"0.80","s":["x","y"],"t":["p","q"]}'
)


def test_keys_sorted_no_spaces_utf8_and_text_for_what_json_lacks():
    assert canonical_json(VALUE) == BYTES


def test_its_sha256():
    assert canonical_sha256(VALUE) == "0fa51e55f7158d4acbb5f50be133d5fd0bd2b4f5bd38f3978d7199a98ea11c97"
    assert canonical_sha256(VALUE) == hashlib.sha256(BYTES).hexdigest()


def test_nan_and_infinity_are_not_canonical():
    for number in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            canonical_json({"rate": number})


def test_the_older_ascii_form_of_release_manifests_format_1():
    assert canonical_json({"name": "rsd-api é"}, ascii_only=True) == b'{"name":"rsd-api \\u00e9"}'


def test_jsonable_is_what_a_json_column_keeps():
    assert jsonable(VALUE) == {
        "a": [1, 2.5, {"c": "Zoë — 7.2.4…", "d": None, "e": True}],
        "at": "2026-01-31T09:30:00+00:00",
        "b": 1,
        "n": "0.80",
        "s": ["x", "y"],
        "t": ["p", "q"],
    }


def test_an_audit_event_hashes_as_it_always_did():
    # The fields of one event as the chain hashes them (event_fields); the hash was pinned when the chain began.
    event = AuditEvent(
        id=1,
        at=datetime(2026, 1, 31, 9, 30, tzinfo=UTC),
        actor_id=None,
        actor_name="Custody (system)",
        action="product.created",
        product_key="rsd",
        object_type="changecontrol.product",
        object_id="1",
        object_human_id="rsd",
        object_version="",
        before=None,
        after={"key": "rsd", "name": "Risk Score Dashboard"},
        reason="",
        request_id="",
        client_address="",
        via_token="",
        previous_hash="0" * 64,
    )
    assert audit.compute_hash(event) == "c38a07a709f8f162cc3270b1d2000070cf6cec0b49388d7d0ff3b0e6afe7ca95"


def test_a_value_json_has_no_type_for_is_not_canonical_but_is_kept_as_text():
    with pytest.raises(TypeError):
        canonical_json({"when": object})
    assert jsonable({"path": PurePosixPath("/var/lib")}) == {"path": "/var/lib"}
