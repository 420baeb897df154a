"""Licence texts as SBOMs carry them (SPDX ids, expressions, names, URLs, Python trove classifiers) → SPDX.

`to_spdx` answers the SPDX id or expression a text means, or None when it cannot be normalised; the parsers then
record the licence as `unknown` and keep the text as declared, and the licences gate decides what `unknown` does
(policy `unknown: fail | review | pass`).

Mappings used, all maintained upstream rather than here: `license-expression` (ids, expressions, deprecated ids
such as `GPL-2.0+`), the SPDX licence list's names as shipped with `cyclonedx-python-lib` (its SPDX XSD), and the
trove classifier table of `cyclonedx-bom` (cyclonedx-py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from urllib.parse import urlsplit

import cyclonedx.schema._res as cyclonedx_schema_resources
from cyclonedx_py._internal.utils.license_trove_classifier import license_trove2spdx
from lxml import etree

from common.licences import spdx_licensing

UNKNOWN = "unknown"
_CUSTOM = re.compile(r"^(DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+$")
_VERSION_WORD = re.compile(r"\b(version\s*|v(?=\d))", re.IGNORECASE)
_BARE_VERSION = re.compile(r"(?<![.\d])(\d+)(?![.\d])")
_NOT_WORD = re.compile(r"[^a-z0-9.+]+")
# Licence pages other than spdx.org's that tools write as a licence "URL" (Maven POMs, npm, NuGet).
_URL_PAGES = {
    "www.apache.org/licenses/license-2.0": "Apache-2.0",
    "apache.org/licenses/license-2.0": "Apache-2.0",
    "www.gnu.org/licenses/gpl-2.0": "GPL-2.0-only",
    "www.gnu.org/licenses/gpl-3.0": "GPL-3.0-only",
    "www.gnu.org/licenses/lgpl-2.1": "LGPL-2.1-only",
    "www.gnu.org/licenses/lgpl-3.0": "LGPL-3.0-only",
    "www.gnu.org/licenses/agpl-3.0": "AGPL-3.0-only",
    "www.eclipse.org/legal/epl-2.0": "EPL-2.0",
    "www.eclipse.org/legal/epl-v10": "EPL-1.0",
    "www.mozilla.org/mpl/2.0": "MPL-2.0",
}


def to_spdx(text: str) -> str | None:
    """The SPDX id or expression `text` means, or None."""
    text = text.strip()
    if not text:
        return None
    if _CUSTOM.match(text):
        return text
    expression = spdx_expression(text)
    if expression is not None:
        return expression
    if text.startswith("License ::"):
        return _from_classifier(text)
    if text.lower().startswith(("http://", "https://")):
        return _from_url(text)
    found = _names().get(_name_key(text))
    return spdx_expression(found) if found else None


def spdx_expression(text: str) -> str | None:
    """The SPDX-normalised expression ("mit" → "MIT", "GPL-2.0+" → "GPL-2.0-or-later"), or None when not one."""
    try:
        parsed = spdx_licensing().parse(text, validate=True, strict=False)
    except Exception:  # noqa: BLE001  # license-expression raises assorted error types on odd text
        return None
    return None if parsed is None else str(parsed.render())


def _from_classifier(classifier: str) -> str | None:
    found = license_trove2spdx(classifier.strip())
    return spdx_expression(found) if found else None


def _from_url(url: str) -> str | None:
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    host = parts.netloc.lower()
    if host.endswith("spdx.org") and path.startswith("/licenses/"):
        return spdx_expression(re.sub(r"\.(html|json|txt)$", "", path.removeprefix("/licenses/")))
    if host.endswith("opensource.org") and path.startswith("/licenses/"):
        return spdx_expression(re.sub(r"(-license)?(\.php|\.html)?$", "", path.removeprefix("/licenses/"), flags=re.I))
    page = re.sub(r"\.(html|txt|php)$", "", f"{host}{path}".lower())
    found = _URL_PAGES.get(page) or _URL_PAGES.get(page.removeprefix("www."))
    return found


def _name_key(name: str) -> str:
    key = _VERSION_WORD.sub("", name.strip().lower().removeprefix("the "))
    key = _BARE_VERSION.sub(r"\1.0", key)
    return _NOT_WORD.sub(" ", key).strip()


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """SPDX licence names → ids, from the SPDX licence list as cyclonedx-python-lib ships it (its XSD)."""
    schema = resources.files(cyclonedx_schema_resources).joinpath("spdx.SNAPSHOT.xsd").read_bytes()
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    names: dict[str, str] = {}
    for enumeration in etree.fromstring(schema, parser).iter("{*}enumeration"):
        identifier = enumeration.get("value") or ""
        documentation = next(enumeration.iter("{*}documentation"), None)
        if identifier and documentation is not None and documentation.text:
            key = _name_key(documentation.text)
            names.setdefault(key, identifier)
            if key.endswith(" only"):  # "GNU General Public License v3.0" means the -only licence
                names.setdefault(key.removesuffix(" only"), identifier)
    return names
