"""REST API of accepted test failures: a release's failing tests, and a reviewer's signed acceptance of one."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import accepted_failures
from approvals.api import release_for
from changecontrol import esign
from changecontrol.access import require_person
from changecontrol.api import SIGNING_ERRORS, SeenContentField, SignatureOutput, signing_context
from changecontrol.services import active_policy
from common.api import validated


class FailureOutput(serializers.Serializer):
    evidence = serializers.CharField(help_text="the report it failed in, e.g. EV-41")
    artifact = serializers.CharField(help_text="the artifact's digest")
    artifact_name = serializers.CharField()
    status = serializers.ChoiceField(choices=["failed", "error"])
    message = serializers.CharField(help_text="the failure message, shortened to 500 characters")


class AcceptedFailureOutput(serializers.Serializer):
    id = serializers.CharField(source="human_id", help_text="AF-<n>")
    release = serializers.CharField(source="release.version")
    test = serializers.CharField(help_text="classname::name")
    classname = serializers.CharField()
    name = serializers.CharField()
    failures = FailureOutput(many=True, help_text="the failing results the reviewer saw")
    justification = serializers.CharField()
    problem_report = serializers.CharField(help_text="a free reference to the problem report tracking it, or empty")
    tier = serializers.CharField()
    policy_version = serializers.IntegerField(source="policy_version.version")
    accepted_by = serializers.CharField(source="accepted_by.username")
    accepted_at = serializers.DateTimeField()
    signature = serializers.SerializerMethodField()

    def get_signature(self, acceptance) -> dict | None:
        signature = self.context.get("signatures", {}).get(acceptance.pk)
        if signature is None:
            signature = accepted_failures.acceptance_signatures([acceptance]).get(acceptance.pk)
        return SignatureOutput(signature).data if signature is not None else None


class FailingTestOutput(serializers.Serializer):
    test = serializers.CharField(help_text="classname::name")
    classname = serializers.CharField()
    name = serializers.CharField()
    failures = FailureOutput(many=True)
    accepted = AcceptedFailureOutput(allow_null=True, help_text="its acceptance, or null while it is not accepted")
    content_sha256 = serializers.CharField(
        help_text="the hash of what a 'failure accepted' signature on this test is bound to now: send it when accepting"
    )


class AcceptingOutput(serializers.Serializer):
    allowed = serializers.BooleanField(help_text="whether the policy in force lets this release's tier accept failures")
    tier = serializers.CharField()
    tiers = serializers.ListField(child=serializers.CharField(), help_text="tests.accept_failures.tiers")
    roles = serializers.ListField(child=serializers.CharField(), help_text="tests.accept_failures.roles")
    problem_report = serializers.ChoiceField(choices=["optional", "required"])


class TestFailuresOutput(serializers.Serializer):
    release = serializers.CharField()
    accepting = AcceptingOutput()
    tests = FailingTestOutput(many=True)


class AcceptFailureInput(serializers.Serializer):
    classname = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    name = serializers.CharField(max_length=1000)
    justification = serializers.CharField(max_length=5000)
    problem_report = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False)
    content_sha256 = SeenContentField()


def test_failures_answer(release) -> dict:
    """The release's failing tests, each with the hash a reviewer signs and its acceptance (if any)."""
    policy = active_policy(release.product)
    rule = policy.document.tests if policy is not None else None
    tier = accepted_failures.release_tier(release, policy) if policy is not None else ""
    tests = accepted_failures.failing_tests(release)
    signatures = accepted_failures.acceptance_signatures([t["accepted"] for t in tests if t["accepted"]])
    return {
        "release": str(release),
        "accepting": {
            "allowed": bool(rule and tier in rule.accept_failure_tiers and release.is_frozen()),
            "tier": tier,
            "tiers": list(rule.accept_failure_tiers) if rule else [],
            "roles": list(rule.accept_failure_roles) if rule else [],
            "problem_report": "required" if rule and rule.problem_report_required else "optional",
        },
        "tests": [
            {
                **t,
                "accepted": AcceptedFailureOutput(t["accepted"], context={"signatures": signatures}).data
                if t["accepted"]
                else None,
                "content_sha256": esign.content_sha256(
                    accepted_failures.accept_failure_signing_content(
                        release, classname=t["classname"], name=t["name"], policy=policy
                    )
                ),
            }
            for t in tests
        ],
    }


class TestFailuresApi(APIView):
    @extend_schema(responses=TestFailuresOutput)
    def get(self, request, product, version):
        """The release's failing tests (in the reports that count), with what accepting each would sign."""
        return Response(test_failures_answer(release_for(request, product, version)))


class AcceptedFailureCreateApi(APIView):
    """Accept one failing test for this release with a Part 11 signature (meaning "failure accepted"): 400 without a
    justification (or a problem report the policy requires), 403 without a role the policy names, 409 when the policy
    lets no failure be accepted at this tier, the release is not frozen, the test is already accepted, or
    `content_changed` when its failures changed since they were read."""

    @extend_schema(request=AcceptFailureInput, responses={201: AcceptedFailureOutput, **SIGNING_ERRORS})
    def post(self, request, product, version):
        release = release_for(request, product, version)
        require_person(request, scope="changes:write")
        data = validated(
            AcceptFailureInput,
            request.data,
            context=signing_context(f"/api/v1/releases/{release.product.key}/{release.version}/test-failures"),
        )
        acceptance = accepted_failures.failure_accept(
            release=release,
            signer=request.user,
            username=data["username"],
            password=data["password"],
            seen_sha256=data["seen_sha256"],
            classname=data["classname"],
            name=data["name"],
            justification=data["justification"],
            problem_report=data["problem_report"],
        )
        return Response(AcceptedFailureOutput(acceptance).data, status=status.HTTP_201_CREATED)
