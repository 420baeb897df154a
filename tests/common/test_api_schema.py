"""The OpenAPI schema documents each operation's errors in the §7 shape, so clients and the fuzzer know them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

ERROR = "#/components/schemas/ErrorOutput"


@pytest.fixture
def schema(api, ci_token) -> dict:
    response = api(token=ci_token).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def error_ref(operation: dict, status: str) -> str:
    return operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]


def test_every_operation_documents_its_error_answers_in_the_error_shape(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if {} not in operation.get("security", [{}]):  # {}: credentials are optional
                assert error_ref(operation, "401") == ERROR, (method, path)
                assert error_ref(operation, "403") == ERROR, (method, path)
            if "{" in path:
                assert error_ref(operation, "404") == ERROR, (method, path)
            if "requestBody" in operation:
                for status in ("400", "409", "411", "413", "415"):
                    assert status in responses, (method, path, status)
            assert "500" not in responses, (method, path)


def test_the_error_shape_names_its_fields(schema):
    error = schema["components"]["schemas"]["ErrorOutput"]
    assert set(error["required"]) == {"error", "detail"}
    assert "fields" in error["properties"]


def test_an_operation_keeps_the_errors_it_declares_itself(schema):
    signing = schema["paths"]["/api/v1/change-requests/{change_request_id}/signatures"]["post"]
    assert error_ref(signing, "409") != ERROR  # content_changed names both hashes
    builds = schema["paths"]["/api/v1/products/{product}/builds"]["post"]
    assert error_ref(builds, "409") == ERROR
