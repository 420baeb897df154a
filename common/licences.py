"""The SPDX licence list, loaded once per process (license-expression takes a second to build it)."""

from __future__ import annotations

from functools import lru_cache

from license_expression import Licensing, get_spdx_licensing


@lru_cache(maxsize=1)
def spdx_licensing() -> Licensing:
    """Parses and validates SPDX licence expressions: policy deny lists, SBOM licences, the licences gate."""
    return get_spdx_licensing()
