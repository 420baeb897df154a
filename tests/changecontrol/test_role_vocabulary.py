"""One role vocabulary: the model's roles are the roles a policy may name, the product permissions, the groups."""

from __future__ import annotations

import yaml

from changecontrol import policy
from changecontrol.models import Product, Role
from changecontrol.roles import ROLE_PERMISSION_PREFIX


def test_a_policy_accepts_exactly_the_models_roles():
    assert set(policy.ROLES) == set(Role.values)


def test_every_role_has_its_product_permission():
    codenames = {codename for codename, _ in Product._meta.permissions}
    assert codenames == {f"{ROLE_PERMISSION_PREFIX}{role}" for role in Role.values}


def test_every_role_the_default_policy_names_is_a_role():
    document = yaml.safe_load(policy.DEFAULT_POLICY_YAML)
    named = {role for rule in document["change_approval"].values() for role in rule.get("roles", [])}
    for environment in document["environments"].values():
        for roles in (environment.get("approval") or {}).get("roles_by_tier", {}).values():
            named |= set(roles)
    named |= set(document["break_glass"]["roles"])
    assert named and named <= set(Role.values)


def test_a_policy_naming_an_unknown_role_is_refused_with_the_vocabulary():
    source = policy.DEFAULT_POLICY_YAML.replace(
        "medium: {roles: [quality], count: 1}", "medium: {roles: [qa], count: 1}"
    )
    try:
        policy.parse_policy(source)
    except policy.PolicyInvalid as error:
        assert "qa" in str(error) and "quality" in str(error)
    else:
        raise AssertionError("a policy naming the role 'qa' was accepted")
