"""The runtime tests deploy and report what the approvals fixtures release and approve."""

from tests.approvals.conftest import (  # noqa: F401 - fixtures, found by pytest through this module
    _fresh_cache,
    artifact,
    change_request,
    ci_user,
    policy,
    production_promotion,
    release,
)
