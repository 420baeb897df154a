"""Every malformed API request is a JSON 4xx in the §7 shape naming what to fix, never a 500 and never an HTML page:
wrong JSON types at the top and inside, deep nesting, unpaired surrogates, huge numbers, oversized bodies (413),
duplicated or missing multipart parts, chunked bodies without a length (docs/security.md)."""

from __future__ import annotations

import http.client
import io
import json
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from common.safe_formats import MAX_JSON_NUMBER_CHARS, UnreadableDocument, parse_json
from evidence.models import Build, Evidence
from tests.common.helpers import assert_invalid_input, build_body, nested
from tests.conftest import open_change_request
from traceability.models import TraceItem

pytestmark = pytest.mark.django_db

IMPORT = "/api/v1/products/rsd/requirements/import"
RISK_PREVIEW = "/api/v1/products/rsd/risk-preview"


def assert_error(response, status: int, code: str, *words: str) -> str:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["error"] == code, body
    for word in words:
        assert word in body["detail"], body
    return body["detail"]


def post_json(client, url: str, raw: bytes | str):
    return client.post(url, raw, content_type="application/json")


def import_json(client, raw: bytes):
    file = io.BytesIO(raw)
    file.name = "items.json"
    return client.post(IMPORT, {"format": "json", "file": file}, format="multipart")


@pytest.fixture
def change_request(product, cast):
    return open_change_request(product=product, requester=cast["rory"], submit=False)


@pytest.fixture
def rory(api, cast):
    return api(cast["rory"])


# ---------------------------------------------------------------- wrong JSON types


@pytest.mark.parametrize(
    ("raw", "found"), [("[]", "an array"), ('"x"', "a string"), ("1", "a number"), ("null", "null")]
)
def test_a_json_body_that_is_not_an_object_is_400_on_risk_preview(rory, raw, found):
    assert_invalid_input(post_json(rory, RISK_PREVIEW, raw), "must be an object", found)


def test_a_json_body_that_is_not_an_object_is_400_on_change_request_items(rory, change_request):
    url = f"/api/v1/change-requests/{change_request.human_id}/items"
    assert_invalid_input(post_json(rory, url, '["REQ-017"]'), "must be an object", "an array")


@pytest.mark.parametrize("answers", [[], "direct", {"patient_safety_impact": {"nested": "x"}}])
def test_risk_answers_of_the_wrong_type_are_400_naming_answers(rory, answers):
    assert_invalid_input(post_json(rory, RISK_PREVIEW, json.dumps({"answers": answers})), "answers")


def test_risk_answers_as_an_object_still_preview_the_tier(rory):
    answers = {"patient_safety_impact": "none", "data_sensitivity": "none", "user_impact": "minor"}
    response = post_json(rory, RISK_PREVIEW, json.dumps({"answers": {**answers, "rollback_complexity": "trivial"}}))
    assert response.status_code == 200, response.content
    assert response.json()["tier"] == "low"


@pytest.mark.parametrize("items", ["REQ-017", [1], [["REQ-017"]], None])
def test_change_request_items_of_the_wrong_type_are_400_naming_items(rory, change_request, items):
    url = f"/api/v1/change-requests/{change_request.human_id}/items"
    assert_invalid_input(post_json(rory, url, json.dumps({"items": items})), "items")


# ---------------------------------------------------------------- numbers, depth, surrogates


@pytest.mark.parametrize("number", ["1" * 5000, "1" * (MAX_JSON_NUMBER_CHARS + 1), "0." + "1" * 200])
def test_a_json_number_longer_than_the_limit_is_400_and_stores_nothing(ci, number):
    raw = json.dumps(build_body()).replace("}", f', "parameters": {{"n": {number}}}}}')
    detail = assert_invalid_input(post_json(ci, "/api/v1/products/rsd/builds", raw), "number", "string")
    assert len(detail) < 400
    assert not Build.objects.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_infinity_and_numbers_beyond_a_float_are_400(ci, literal):
    raw = json.dumps(build_body()).replace("}", f', "parameters": {{"n": {literal}}}}}')
    assert_invalid_input(post_json(ci, "/api/v1/products/rsd/builds", raw))


def test_a_number_as_long_as_the_limit_is_accepted(ci):
    raw = json.dumps(build_body()).replace("}", f', "parameters": {{"n": {"9" * MAX_JSON_NUMBER_CHARS}}}}}')
    assert post_json(ci, "/api/v1/products/rsd/builds", raw).status_code == 201


def test_a_body_nested_ten_thousand_deep_is_400_on_risk_preview(rory):
    assert_invalid_input(post_json(rory, RISK_PREVIEW, b'{"answers": ' + nested(10_000) + b"}"), "deeper than")


def test_a_body_that_is_not_utf8_is_400(rory):
    assert_invalid_input(post_json(rory, RISK_PREVIEW, b'{"answers": "\xff"}'), "UTF-8")


# ---------------------------------------------------------------- requirement imports (JSON)


def test_a_requirement_import_nested_ten_thousand_deep_is_400_and_imports_nothing(ci):
    raw = b'{"items": [{"id": "REQ-1", "title": "t", "attributes": ' + nested(10_000) + b"}]}"
    assert_invalid_input(import_json(ci, raw), "nothing was imported", "deeper than")
    assert not TraceItem.objects.exists()


def test_a_requirement_import_with_an_unpaired_surrogate_is_400_naming_the_path(ci):
    raw = b'{"items": [{"id": "REQ-1", "title": "Alarm \\udc00 limits"}]}'
    assert_invalid_input(import_json(ci, raw), "items[0].title", "surrogate")
    assert not TraceItem.objects.exists()


def test_a_requirement_import_with_a_5000_digit_number_is_400(ci):
    raw = b'{"items": [{"id": "REQ-1", "title": "t", "severity": ' + b"7" * 5000 + b"}]}"
    assert_invalid_input(import_json(ci, raw), "nothing was imported", "5000 characters")
    assert not TraceItem.objects.exists()


def test_a_requirement_import_with_nan_is_400(ci):
    assert_invalid_input(import_json(ci, b'[{"id": "REQ-1", "title": "t", "severity": NaN}]'), "NaN")


def test_a_reqif_import_nested_past_the_xml_limit_is_400(ci):
    raw = b'<?xml version="1.0"?><REQ-IF>' + b"<a>" * 5000 + b"</a>" * 5000 + b"</REQ-IF>"
    file = io.BytesIO(raw)
    file.name = "items.reqif"
    response = ci.post(IMPORT, {"format": "reqif", "file": file}, format="multipart")
    assert_invalid_input(response, "nothing was imported")


# ---------------------------------------------------------------- oversized bodies: 413


def test_a_json_body_over_the_limit_is_a_json_413_before_it_is_read(ci, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    raw = json.dumps(build_body(parameters={"blob": "x" * 5000}))
    detail = assert_error(post_json(ci, "/api/v1/products/rsd/builds", raw), 413, "too_large", "2000 bytes")
    assert "docs/security.md" in detail
    assert not Build.objects.exists()


def test_a_form_body_over_the_limit_is_a_json_413(ci, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = ci.post(
        "/api/v1/products/rsd/builds",
        "commit=" + "a" * 40 + "&branch=" + "b" * 5000,
        content_type="application/x-www-form-urlencoded",
    )
    assert_error(response, 413, "too_large")


def test_multipart_form_fields_over_the_limit_are_a_json_413_not_an_html_400(ci, artifact_digest, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = ci.post(
        f"/api/v1/artifacts/{artifact_digest}/evidence",
        {"type": "generic", "name": "n" * 5000, "file": SimpleUploadedFile("notes.txt", b"hello")},
        format="multipart",
    )
    assert_error(response, 413, "too_large", "2000 bytes")
    assert not Evidence.objects.exists()


def test_too_many_multipart_fields_are_a_json_413(ci, artifact_digest, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = {f"extra{i}": "x" for i in range(20)}
    response = ci.post(
        f"/api/v1/artifacts/{artifact_digest}/evidence",
        {"type": "generic", "file": SimpleUploadedFile("notes.txt", b"hello"), **fields},
        format="multipart",
    )
    assert_error(response, 413, "too_large", "more than 10 fields")


def test_too_many_query_parameters_are_a_json_413_even_outside_a_view(ci, settings):
    # Read by middleware, before any view: Django's handler400 answers, and under /api/ it answers JSON.
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = ci.get("/api/v1/products?" + "&".join(f"p{i}=1" for i in range(20)))
    assert_error(response, 413, "too_large", "more than 10 fields")


def test_pages_keep_the_html_400_for_too_many_fields(api, cast, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = api(cast["rory"]).get("/products/rsd/releases?" + "&".join(f"p{i}=1" for i in range(20)))
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


# ---------------------------------------------------------------- multipart parts


def test_two_file_parts_in_one_evidence_upload_are_400_naming_the_part(ci, artifact_digest):
    response = ci.post(
        f"/api/v1/artifacts/{artifact_digest}/evidence",
        {"type": "generic", "file": [SimpleUploadedFile("a.txt", b"first"), SimpleUploadedFile("b.txt", b"second")]},
        format="multipart",
    )
    assert_invalid_input(response, "'file'", "2 times")
    assert not Evidence.objects.exists()


def test_two_type_parts_in_one_evidence_upload_are_400_naming_the_part(ci, artifact_digest):
    response = ci.post(
        f"/api/v1/artifacts/{artifact_digest}/evidence",
        {"type": ["generic", "junit"], "file": SimpleUploadedFile("a.txt", b"first")},
        format="multipart",
    )
    assert_invalid_input(response, "'type'", "2 times")


def test_an_evidence_upload_without_a_type_part_is_400_naming_it(ci, artifact_digest):
    response = ci.post(
        f"/api/v1/artifacts/{artifact_digest}/evidence",
        {"file": SimpleUploadedFile("a.txt", b"first")},
        format="multipart",
    )
    assert_invalid_input(response, "multipart part `type`", "junit")


def test_an_evidence_upload_without_a_file_part_is_400_naming_it(ci, artifact_digest):
    response = ci.post(f"/api/v1/artifacts/{artifact_digest}/evidence", {"type": "generic"}, format="multipart")
    assert_invalid_input(response, "multipart part `file`")


def test_a_requirement_import_with_two_files_or_none_is_400_naming_the_part(ci):
    first, second = io.BytesIO(b"id,title\nREQ-1,a\n"), io.BytesIO(b"id,title\nREQ-2,b\n")
    first.name, second.name = "a.csv", "b.csv"
    twice = ci.post(IMPORT, {"format": "csv", "file": [first, second]}, format="multipart")
    assert_invalid_input(twice, "'file'", "2 times")
    missing = ci.post(IMPORT, {"format": "csv"}, format="multipart")
    assert_invalid_input(missing, "file")
    assert not TraceItem.objects.exists()


# ---------------------------------------------------------------- chunked bodies on a live server


def raw_request(base_url: str, path: str, *, token: str, body_chunks: list[bytes], content_type: str) -> tuple:
    """Send a body with Transfer-Encoding: chunked and no Content-Length, as `curl -T -` does."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Authorization", f"Bearer {token}")
        connection.putheader("Content-Type", content_type)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for chunk in body_chunks:
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), json.loads(response.read())
    finally:
        connection.close()


def evidence_upload_body(boundary: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\ngeneric\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello\r\n'
        f"--{boundary}--\r\n"
    ).encode()


def send_chunked_upload(base_url: str, token: str, digest: str) -> tuple:
    body = evidence_upload_body("custody-boundary")
    return raw_request(
        base_url,
        f"/api/v1/artifacts/{digest}/evidence",
        token=token,
        body_chunks=[body[:40], body[40:]],
        content_type="multipart/form-data; boundary=custody-boundary",
    )


@pytest.mark.django_db(transaction=True)
def test_a_chunked_upload_is_read_whole_under_gunicorn(gunicorn_url, ci_token, artifact_digest):
    status, _, answer = send_chunked_upload(gunicorn_url, ci_token, artifact_digest)
    assert status == 202, answer
    evidence = Evidence.objects.get()
    assert (evidence.evidence_type, evidence.size) == ("generic", 5)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_json_body_over_the_limit_is_413_under_gunicorn(gunicorn_url, ci_token):
    status, content_type, answer = raw_request(
        gunicorn_url,
        "/api/v1/products/rsd/builds",
        token=ci_token,
        body_chunks=[json.dumps(build_body(parameters={"blob": "x" * 1024})).encode()] * 11 * 1024,
        content_type="application/json",
    )
    assert (status, content_type, answer["error"]) == (413, "application/json", "too_large"), answer
    assert not Build.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_chunked_upload_is_411_where_the_server_cannot_decode_it(live_server, ci_token, artifact_digest):
    # Django's development server (live_server) gives the application the raw chunked bytes: ask for a length.
    status, content_type, answer = send_chunked_upload(live_server.url, ci_token, artifact_digest)
    assert (status, content_type) == (411, "application/json")
    assert answer["error"] == "length_required"
    assert "Content-Length" in answer["detail"]
    assert not Evidence.objects.exists()


# ---------------------------------------------------------------- the one JSON reader (evidence reports use it too)


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b'{"n": ' + b"1" * 5000 + b"}", "5000 characters"),
        (b'{"n": NaN}', "NaN"),
        (b'{"n": -Infinity}', "-Infinity"),
        (b'{"n": 1e400}', "too large"),
        (b"[" * 100_000 + b"]" * 100_000, "deeper than"),
        (b'{"n": ', "line 1 column 7"),
    ],
)
def test_an_uploaded_json_document_that_cannot_be_read_says_why(raw, said):
    with pytest.raises(UnreadableDocument) as refused:
        parse_json(raw)
    assert said in str(refused.value)
