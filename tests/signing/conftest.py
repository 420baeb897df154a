"""The signing tests sign every kind of record, so they use the approvals fixtures (a policy in force, a release
with full evidence, its production promotion) and build change requests, policy versions and reviews beside them."""

from tests.approvals.conftest import (  # noqa: F401 - fixtures, found by pytest through this module
    _fresh_cache,
    artifact,
    change_request,
    ci_user,
    policy,
    production_promotion,
    release,
)
