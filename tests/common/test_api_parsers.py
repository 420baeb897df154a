"""Input the database cannot store (NUL, unpaired surrogates) and JSON nested too deep: a JSON 400, never a 500."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.exceptions import ParseError

from common.api_parsers import MAX_JSON_DEPTH, check_json
from evidence.models import Build, Evidence
from tests.common.helpers import assert_invalid_input, build_body, nested

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_json_value_is_400_naming_where_and_stores_nothing(ci):
    response = ci.post("/api/v1/products/rsd/builds", build_body(parameters={"stage": "deploy\u0000"}), format="json")
    assert_invalid_input(response, "parameters.stage", "NUL", "\\u0000")
    assert not Build.objects.exists()


def test_a_nul_in_a_json_key_is_400(ci):
    response = ci.post("/api/v1/products/rsd/builds", build_body(parameters={"st\u0000age": "x"}), format="json")
    assert_invalid_input(response, "key", "parameters.st\\u0000age")


def test_an_unpaired_surrogate_is_400_not_an_encoding_error(ci):
    raw = b'{"commit": "' + b"a" * 40 + b'", "pipeline_url": "https://ci.example/runs/2", "branch": "main\\ud800"}'
    response = ci.post("/api/v1/products/rsd/builds", raw, content_type="application/json")
    assert_invalid_input(response, "branch", "surrogate")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000])
def test_json_nested_deeper_than_the_limit_is_400(ci, depth):
    raw = b'{"commit": "' + b"a" * 40 + b'", "pipeline_url": "https://ci.example/deep", "parameters": '
    raw += nested(depth - 1) + b"}"
    response = ci.post("/api/v1/products/rsd/builds", raw, content_type="application/json")
    assert_invalid_input(response, f"deeper than {MAX_JSON_DEPTH} levels")


def test_json_as_deep_as_the_limit_is_accepted(ci):
    raw = b'{"commit": "' + b"a" * 40 + b'", "pipeline_url": "https://ci.example/deep", "parameters": '
    raw += nested(MAX_JSON_DEPTH - 1) + b"}"
    response = ci.post("/api/v1/products/rsd/builds", raw, content_type="application/json")
    assert response.status_code == 201, response.content[:300]


def test_the_depth_check_walks_without_recursion():
    deep: dict = {}
    for _ in range(50_000):  # far beyond the recursion limit: only an iterative walk survives it
        deep = {"a": deep}
    with pytest.raises(ParseError, match="deeper than"):
        check_json(deep)
    check_json({"list": [["ok", {"k": "v"}]], "n": 1, "none": None, "text": "é ✓ \U0001f600"})


def test_a_nul_anywhere_is_found_and_its_path_named():
    with pytest.raises(ParseError, match=r"'artifacts\[1\]\.tags\[0\]'"):
        check_json({"artifacts": [{"name": "a"}, {"name": "b", "tags": ["x\u0000"]}]})
    with pytest.raises(ParseError, match="the JSON body contains a NUL"):
        check_json("\u0000")


def test_a_nul_in_a_multipart_field_is_400_but_a_file_may_hold_any_bytes(ci, artifact_digest):
    url = f"/api/v1/artifacts/{artifact_digest}/evidence"
    refused = ci.post(
        url,
        {"type": "generic", "name": "notes\u0000.txt", "file": SimpleUploadedFile("notes.txt", b"hello")},
        format="multipart",
    )
    assert_invalid_input(refused, "form field 'name'", "NUL")
    assert not Evidence.objects.exists()
    binary = ci.post(
        url, {"type": "generic", "file": SimpleUploadedFile("core.bin", b"\x00\x01\x00binary")}, format="multipart"
    )
    assert binary.status_code == 202, binary.content


def test_a_nul_in_a_urlencoded_form_field_is_400(ci):
    response = ci.post(
        "/api/v1/products/rsd/builds",
        "commit=" + "a" * 40 + "&pipeline_url=https%3A%2F%2Fci.example%2Fruns%2F3&branch=ma%00in",
        content_type="application/x-www-form-urlencoded",
    )
    assert_invalid_input(response, "form field 'branch'")


def test_a_nul_in_a_query_parameter_is_400_naming_it(ci, artifact_digest):
    response = ci.get("/api/v1/status", {"artifact": artifact_digest, "environment": "stag\u0000ing"})
    assert_invalid_input(response, "query parameter 'environment'", "NUL")
    assert "X-Request-ID" in response


def test_a_nul_in_the_path_is_400(ci):
    assert_invalid_input(ci.get("/api/v1/releases/rsd/7.2%00.4"), "URL path")


def test_a_nul_in_a_page_query_string_is_a_400_page(api, cast):
    response = api(cast["rory"]).get("/products/rsd/releases", {"q": "a\u0000"})
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")
