"""SBOMs: CycloneDX 1.4-1.6 JSON, SPDX 2.3 JSON and SPDX 3.0 JSON-LD, flattened into components."""

from __future__ import annotations

import io
import json
import re
import warnings
from typing import Any
from xml.etree import ElementTree

from lxml import etree

from common.times import parse_timestamp
from evidence.parsers.base import (
    EvidenceParseError,
    clean_text,
    local_name,
    parse_json,
    parse_xml,
    refuse_declared_entities,
    warn,
)
from evidence.parsers.licences import UNKNOWN, spdx_expression, to_spdx
from evidence.parsers.results import SbomComponent, SbomDocument

TEXT_LIMIT = 1000
LICENSE_LIMIT = 2000
_NO_LICENSE = frozenset({"NOASSERTION", "NONE", ""})
_SHA_WITHOUT_DASH = re.compile(r"^SHA(\d+)$")
_OPERATOR = re.compile(r"\s(OR|AND|WITH)\s", re.IGNORECASE)
MAX_NESTING = 100  # components nest (assemblies); a deeper tree is a malicious or broken document


def parse_cyclonedx(data: bytes) -> SbomDocument:
    """Read a CycloneDX JSON BOM (1.4-1.6): every component, nested ones included, in document order."""
    bom = _object(parse_json(data), "$")
    if bom.get("bomFormat") != "CycloneDX":
        raise EvidenceParseError(
            f"bomFormat is {bom.get('bomFormat')!r}, not 'CycloneDX'; check that the right file was uploaded "
            "as type cyclonedx",
            location="bomFormat",
        )
    metadata = _object(bom.get("metadata") or {}, "metadata")
    subject = _object(metadata.get("component") or {}, "metadata.component")
    components: list[SbomComponent] = []
    _collect_cyclonedx(_array(bom.get("components"), "components"), path="components", into=components, depth=0)
    return SbomDocument(
        format="cyclonedx",
        spec_version=_text(bom.get("specVersion"), "specVersion"),
        components=components,
        subject_name=_text(subject.get("name"), "metadata.component.name"),
        created_at=parse_timestamp(metadata.get("timestamp")),
        serial=_text(bom.get("serialNumber"), "serialNumber"),
        tools=_cyclonedx_tools(metadata.get("tools"), "metadata.tools"),
    )


CYCLONEDX_XML_VERSIONS = ("1.1", "1.2", "1.3", "1.4", "1.5", "1.6")
_CYCLONEDX_NAMESPACE = "http://cyclonedx.org/schema/bom/"


def cyclonedx_json(data: bytes) -> bytes:
    """A CycloneDX document as JSON bytes: JSON as sent; XML (spec 1.1-1.6) read with cyclonedx-python-lib.

    The XML is first read with the hardened parser (no entities, no network), then handed to the library and
    written back as CycloneDX 1.6 JSON carrying the document's own specVersion, so one reader serves both.
    """
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"<":
        return data
    root = parse_xml(data)
    refuse_declared_entities(root)
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    version = namespace.removeprefix(_CYCLONEDX_NAMESPACE) if namespace.startswith(_CYCLONEDX_NAMESPACE) else ""
    if local_name(root) != "bom" or not version:
        raise EvidenceParseError(
            f"the root element is <{local_name(root)}> in namespace {namespace or '(none)'!r}, but CycloneDX XML "
            f'starts with <bom xmlns="{_CYCLONEDX_NAMESPACE}1.x">; check that the right file was uploaded as type '
            "cyclonedx",
            location=f"line {root.sourceline}",
        )
    if version not in CYCLONEDX_XML_VERSIONS:
        raise EvidenceParseError(
            f"CycloneDX XML {version} is not read; versions {', '.join(CYCLONEDX_XML_VERSIONS)} are",
            location=f"line {root.sourceline}",
        )
    if not any(local_name(child) == "vulnerabilities" for child in root):
        # An SBOM alone (the large, common case) is read straight from the tree: the library's model sorts and
        # registers every component against every other, which costs seconds per thousand components.
        return json.dumps(_cyclonedx_xml_sbom(root, version)).encode()
    from cyclonedx.model.bom import Bom  # noqa: PLC0415  # heavy; only XML with vulnerabilities needs it
    from cyclonedx.output.json import JsonV1Dot6  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the library's remarks on dependency graphs are not about reading
            bom = Bom.from_xml(ElementTree.fromstring(etree.tostring(root)))  # noqa: S314  # already hardened
            document = json.loads(JsonV1Dot6(bom).output_as_string())
    except (ValueError, TypeError, KeyError, AttributeError, ElementTree.ParseError) as exc:
        raise EvidenceParseError(
            f"the CycloneDX {version} XML does not follow its schema ({type(exc).__name__}: {str(exc)[:300]})"
        ) from None
    document["specVersion"] = version
    return json.dumps(document).encode()


def _cyclonedx_xml_sbom(root: etree._Element, version: str) -> dict[str, Any]:
    """The JSON form of a CycloneDX XML SBOM, for the fields `parse_cyclonedx` reads (components, nested ones
    included, their licences and hashes; the subject, timestamp and tools; the serial number)."""
    document: dict[str, Any] = {"bomFormat": "CycloneDX", "specVersion": version}
    if root.get("serialNumber"):
        document["serialNumber"] = root.get("serialNumber")
    for child in root:
        name = local_name(child)
        if name == "components":
            document["components"] = _xml_components(child, depth=0)
        elif name == "metadata":
            document["metadata"] = _xml_metadata(child)
    return document


def _xml_children(element: etree._Element) -> dict[str, etree._Element]:
    return {local_name(child): child for child in element if isinstance(child.tag, str)}


def _xml_text(element: etree._Element | None) -> str | None:
    return None if element is None else (element.text or "").strip()


def _xml_components(container: etree._Element, *, depth: int) -> list[dict[str, Any]]:
    if depth > MAX_NESTING:
        raise EvidenceParseError(
            f"components nest more than {MAX_NESTING} levels deep", location=f"line {container.sourceline}"
        )
    return [_xml_component(child, depth) for child in container if local_name(child) == "component"]


def _xml_component(element: etree._Element, depth: int) -> dict[str, Any]:
    children = _xml_children(element)
    component: dict[str, Any] = {
        key: text for key in ("group", "name", "version", "purl") if (text := _xml_text(children.get(key))) is not None
    }
    if "name" not in component:
        # The JSON reader names the path; in XML the line says where.
        raise EvidenceParseError("every CycloneDX component needs a name", location=f"line {element.sourceline}")
    for attribute, key in (("type", "type"), ("bom-ref", "bom-ref")):
        if element.get(attribute):
            component[key] = element.get(attribute)
    if "licenses" in children:
        component["licenses"] = _xml_licences(children["licenses"])
    if "hashes" in children:
        component["hashes"] = [
            {"alg": entry.get("alg") or "", "content": (entry.text or "").strip()}
            for entry in children["hashes"]
            if local_name(entry) == "hash"
        ]
    if "components" in children:
        component["components"] = _xml_components(children["components"], depth=depth + 1)
    return component


def _xml_licences(element: etree._Element) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for entry in element:
        name = local_name(entry)
        if name == "expression":
            entries.append({"expression": (entry.text or "").strip()})
        elif name == "license":
            fields = _xml_children(entry)
            licence = {key: _xml_text(fields[key]) for key in ("id", "name") if key in fields}
            if "text" in fields:
                licence["text"] = {"content": _xml_text(fields["text"])}
            entries.append({"license": licence})
    return entries


def _xml_metadata(element: etree._Element) -> dict[str, Any]:
    children = _xml_children(element)
    metadata: dict[str, Any] = {}
    if (timestamp := _xml_text(children.get("timestamp"))) is not None:
        metadata["timestamp"] = timestamp
    if "component" in children:
        metadata["component"] = _xml_component(children["component"], depth=0)
    if "tools" in children:
        # 1.4 and earlier list <tool> elements; 1.5+ may list <components> and <services> instead.
        tools = []
        for tool in children["tools"].iter():
            if local_name(tool) in ("tool", "component", "service"):
                fields = _xml_children(tool)
                if "name" in fields:
                    tools.append({"name": _xml_text(fields["name"]), "version": _xml_text(fields.get("version")) or ""})
        metadata["tools"] = tools
    return metadata


def _collect_cyclonedx(items: list[Any], *, path: str, into: list[SbomComponent], depth: int) -> None:
    if depth > MAX_NESTING:
        raise EvidenceParseError(f"components nest more than {MAX_NESTING} levels deep", location=path)
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        component = _object(item, item_path)
        name = component.get("name")
        if not isinstance(name, str) or not name:
            raise EvidenceParseError("every CycloneDX component needs a name", location=f"{item_path}.name")
        into.append(
            SbomComponent(
                name=clean_text(name, limit=TEXT_LIMIT),
                version=_text(component.get("version"), f"{item_path}.version"),
                purl=_text(component.get("purl"), f"{item_path}.purl"),
                **_cyclonedx_license(component.get("licenses"), f"{item_path}.licenses"),
                hashes=_cyclonedx_hashes(component.get("hashes"), f"{item_path}.hashes"),
                bom_ref=_text(component.get("bom-ref"), f"{item_path}.bom-ref"),
                kind=_text(component.get("type"), f"{item_path}.type"),
                group=_text(component.get("group"), f"{item_path}.group"),
            )
        )
        nested = _array(component.get("components"), f"{item_path}.components")
        _collect_cyclonedx(nested, path=f"{item_path}.components", into=into, depth=depth + 1)


def _cyclonedx_license(value: Any, path: str) -> dict[str, str]:
    """One SPDX expression for a component's `licenses`, several entries joined with AND.

    Identifiers and expressions are the licence. A `name` counts only when there is neither and it is not
    the label of an attached licence file (cyclonedx-py writes "declared license file: LICENSE" with the
    text): such labels describe evidence, not which licence applies.
    """
    entries = _array(value, path)
    precise: list[str] = []
    named: list[str] = []
    for index, entry in enumerate(entries):
        entry = _object(entry, f"{path}[{index}]")
        if isinstance(entry.get("expression"), str) and entry["expression"].strip():
            precise.append(entry["expression"].strip())
            continue
        licence = entry.get("license")
        if not isinstance(licence, dict):
            continue  # an odd licence entry must never block the evidence
        if isinstance(licence.get("id"), str) and licence["id"].strip():
            precise.append(licence["id"].strip())
        elif isinstance(licence.get("name"), str) and licence["name"].strip() and "text" not in licence:
            named.append(licence["name"].strip())
    return combine_licenses(precise or named)


def _cyclonedx_hashes(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    hashes = []
    for index, entry in enumerate(_array(value, path)):
        entry = _object(entry, f"{path}[{index}]")
        algorithm, content = entry.get("alg"), entry.get("content")
        if not isinstance(algorithm, str) or not isinstance(content, str):
            raise EvidenceParseError("a hash needs a string 'alg' and 'content'", location=f"{path}[{index}]")
        hashes.append((normalise_hash_algorithm(algorithm), clean_text(content.strip().lower(), limit=TEXT_LIMIT)))
    return tuple(hashes)


def _cyclonedx_tools(value: Any, path: str) -> tuple[str, ...]:
    """Tool names from 1.4's array of tools or 1.5+'s object of components and services."""
    if value is None:
        return ()
    if isinstance(value, dict):
        listed = [*_array(value.get("components"), f"{path}.components"), *_array(value.get("services"), path)]
    else:
        listed = _array(value, path)
    names = []
    for tool in listed:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            version = tool.get("version") if isinstance(tool.get("version"), str) else ""
            names.append(clean_text(f"{tool['name']} {version}".strip(), limit=TEXT_LIMIT))
    return tuple(names)


_TAG_VALUE_START = re.compile(rb"\A(?:\s*#[^\n]*\n|\s*\n)*\s*SPDXVersion\s*:", re.IGNORECASE)


def spdx_json(data: bytes) -> bytes:
    """An SPDX document as JSON bytes: JSON as sent; SPDX 2.2/2.3 tag-value (`syft -o spdx`, `trivy --format
    spdx`) read with spdx-tools and written as SPDX JSON."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = data.decode("utf-16").encode()
    if not _TAG_VALUE_START.match(data.removeprefix(b"\xef\xbb\xbf")):
        return data
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvidenceParseError(f"the tag-value file is not UTF-8 (byte {exc.start})") from None
    from spdx_tools.spdx.parser.error import SPDXParsingError  # noqa: PLC0415  # heavy; only tag-value needs it
    from spdx_tools.spdx.parser.tagvalue.parser import Parser  # noqa: PLC0415
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream  # noqa: PLC0415

    try:
        document = Parser().parse(text)
    except SPDXParsingError as exc:
        messages = "; ".join(str(message) for message in exc.get_messages()[:5])
        raise EvidenceParseError(f"the SPDX tag-value document cannot be read: {messages[:1500]}") from None
    written = io.StringIO()
    write_document_to_stream(document, written, validate=False)
    return written.getvalue().encode()


def parse_spdx(data: bytes) -> SbomDocument:
    """Read an SPDX 2.3 JSON document, or an SPDX 3.0 JSON-LD one (detected by its @graph)."""
    document = _object(parse_json(data), "$")
    if "@graph" in document or "@context" in document:
        return _parse_spdx3(document)
    version = document.get("spdxVersion")
    if not isinstance(version, str) or not version.startswith("SPDX-2."):
        raise EvidenceParseError(
            f"spdxVersion is {version!r}; SPDX 2.x JSON ('SPDX-2.3') or SPDX 3 JSON-LD is expected — check "
            "that the right file was uploaded as type spdx (SPDX RDF is not read: send JSON or tag-value)",
            location="spdxVersion",
        )
    creation = _object(document.get("creationInfo") or {}, "creationInfo")
    components: list[SbomComponent] = []
    names_by_id: dict[str, str] = {}
    for index, item in enumerate(_array(document.get("packages"), "packages")):
        package = _spdx2_package(item, f"packages[{index}]")
        names_by_id[package.bom_ref] = package.name
        components.append(package)
    described = [
        _text(ref, "documentDescribes") for ref in _array(document.get("documentDescribes"), "documentDescribes")
    ]
    for relationship in _array(document.get("relationships"), "relationships"):
        if (
            isinstance(relationship, dict)
            and relationship.get("relationshipType") == "DESCRIBES"
            and relationship.get("spdxElementId") == "SPDXRef-DOCUMENT"
            and isinstance(relationship.get("relatedSpdxElement"), str)
        ):
            described.append(relationship["relatedSpdxElement"])
    subject = next((names_by_id[ref] for ref in described if ref in names_by_id), "")
    return SbomDocument(
        format="spdx",
        spec_version=clean_text(version.removeprefix("SPDX-"), limit=TEXT_LIMIT),
        components=components,
        subject_name=subject or _text(document.get("name"), "name"),
        created_at=parse_timestamp(creation.get("created")),
        serial=_text(document.get("documentNamespace"), "documentNamespace"),
        tools=tuple(
            clean_text(creator.removeprefix("Tool:").strip(), limit=TEXT_LIMIT)
            for creator in _array(creation.get("creators"), "creationInfo.creators")
            if isinstance(creator, str) and creator.startswith("Tool:")
        ),
    )


def _spdx2_package(item: Any, path: str) -> SbomComponent:
    package = _object(item, path)
    name = package.get("name")
    if not isinstance(name, str) or not name:
        raise EvidenceParseError("every SPDX package needs a name", location=f"{path}.name")
    # The concluded licence is the reviewer's finding; the declared one is what the author claims.
    licence = _text(package.get("licenseConcluded"), f"{path}.licenseConcluded")
    if licence.strip() in _NO_LICENSE:
        licence = _text(package.get("licenseDeclared"), f"{path}.licenseDeclared")
    purl = ""
    for index, ref in enumerate(_array(package.get("externalRefs"), f"{path}.externalRefs")):
        ref = _object(ref, f"{path}.externalRefs[{index}]")
        if ref.get("referenceType") == "purl" and isinstance(ref.get("referenceLocator"), str):
            purl = clean_text(ref["referenceLocator"], limit=TEXT_LIMIT)
            break
    hashes = []
    for index, checksum in enumerate(_array(package.get("checksums"), f"{path}.checksums")):
        checksum = _object(checksum, f"{path}.checksums[{index}]")
        algorithm, value = checksum.get("algorithm"), checksum.get("checksumValue")
        if not isinstance(algorithm, str) or not isinstance(value, str):
            raise EvidenceParseError(
                "a checksum needs a string 'algorithm' and 'checksumValue'", location=f"{path}.checksums[{index}]"
            )
        hashes.append((normalise_hash_algorithm(algorithm), clean_text(value.strip().lower(), limit=TEXT_LIMIT)))
    return SbomComponent(
        name=clean_text(name, limit=TEXT_LIMIT),
        version=_text(package.get("versionInfo"), f"{path}.versionInfo"),
        purl=purl,
        **combine_licenses([licence]),
        hashes=tuple(hashes),
        bom_ref=_text(package.get("SPDXID"), f"{path}.SPDXID"),
        kind=_text(package.get("primaryPackagePurpose"), f"{path}.primaryPackagePurpose").lower(),
    )


def _parse_spdx3(document: dict[str, Any]) -> SbomDocument:
    """SPDX 3.0 JSON-LD: a flat @graph of elements that refer to each other by spdxId or blank-node @id."""
    graph = document.get("@graph")
    if not isinstance(graph, list):
        raise EvidenceParseError("an SPDX 3 JSON-LD document needs a '@graph' array", location="@graph")
    by_id: dict[str, dict[str, Any]] = {}
    for index, element in enumerate(graph):
        element = _object(element, f"@graph[{index}]")
        identifier = element.get("spdxId") or element.get("@id")
        if isinstance(identifier, str):
            by_id[identifier] = element
    licences: dict[tuple[str, str], str] = {}  # (package id, relationship type) -> expression
    for element in graph:
        if element.get("type") != "Relationship":
            continue
        kind = element.get("relationshipType")
        if kind not in ("hasConcludedLicense", "hasDeclaredLicense"):
            continue
        target = by_id.get(next(iter(element.get("to") or []), ""), {})
        expression = target.get("simplelicensing_licenseExpression")
        if isinstance(element.get("from"), str) and isinstance(expression, str):
            licences[(element["from"], kind)] = expression
    document_element = next((e for e in graph if e.get("type") == "SpdxDocument"), {})
    components = []
    for index, element in enumerate(graph):
        if element.get("type") not in ("software_Package", "Package"):
            continue
        components.append(_spdx3_package(element, f"@graph[{index}]", licences))
    names = {c.bom_ref: c.name for c in components}
    roots = document_element.get("rootElement") or []
    subject = next((names[root] for root in roots if isinstance(root, str) and root in names), "")
    creation = by_id.get(document_element.get("creationInfo") or "", {})
    if isinstance(document_element.get("creationInfo"), dict):
        creation = document_element["creationInfo"]
    tools = tuple(
        clean_text(by_id[ref].get("name"), limit=TEXT_LIMIT)
        for ref in creation.get("createdUsing") or []
        if isinstance(ref, str) and ref in by_id
    )
    return SbomDocument(
        format="spdx",
        spec_version=_text(creation.get("specVersion"), "@graph[CreationInfo].specVersion") or "3",
        components=components,
        subject_name=subject or _text(document_element.get("name"), "@graph[SpdxDocument].name"),
        created_at=parse_timestamp(creation.get("created")),
        serial=_text(document_element.get("spdxId"), "@graph[SpdxDocument].spdxId"),
        tools=tools,
    )


def _spdx3_package(element: dict[str, Any], path: str, licences: dict[tuple[str, str], str]) -> SbomComponent:
    name = element.get("name")
    if not isinstance(name, str) or not name:
        raise EvidenceParseError("every SPDX package needs a name", location=f"{path}.name")
    identifier = _text(element.get("spdxId") or element.get("@id"), f"{path}.spdxId")
    licence = licences.get((identifier, "hasConcludedLicense"), "")
    if licence.strip() in _NO_LICENSE:
        licence = licences.get((identifier, "hasDeclaredLicense"), "")
    purl = _text(element.get("software_packageUrl"), f"{path}.software_packageUrl")
    for ref in _array(element.get("externalIdentifier"), f"{path}.externalIdentifier"):
        if not purl and isinstance(ref, dict) and ref.get("externalIdentifierType") == "packageUrl":
            purl = clean_text(ref.get("identifier"), limit=TEXT_LIMIT)
    hashes = []
    for index, check in enumerate(_array(element.get("verifiedUsing"), f"{path}.verifiedUsing")):
        # PackageVerificationCode is a digest over the package's files, not of the package: skip it.
        if isinstance(check, dict) and check.get("type") == "Hash":
            algorithm, value = check.get("algorithm"), check.get("hashValue")
            if not isinstance(algorithm, str) or not isinstance(value, str):
                raise EvidenceParseError(
                    "a Hash needs a string 'algorithm' and 'hashValue'", location=f"{path}.verifiedUsing[{index}]"
                )
            hashes.append((normalise_hash_algorithm(algorithm), clean_text(value.strip().lower(), limit=TEXT_LIMIT)))
    return SbomComponent(
        name=clean_text(name, limit=TEXT_LIMIT),
        version=_text(element.get("software_packageVersion"), f"{path}.software_packageVersion"),
        purl=purl,
        **combine_licenses([licence]),
        hashes=tuple(hashes),
        bom_ref=identifier,
        kind=_text(element.get("software_primaryPurpose"), f"{path}.software_primaryPurpose").lower(),
    )


def combine_licenses(parts: list[str]) -> dict[str, str]:
    """`license_expression` and `license_declared` of a component from its licence texts (joined with AND).

    Each text — an SPDX id or expression, a licence name, URL or trove classifier — is normalised to SPDX
    (evidence.parsers.licences). When one cannot be, the expression is `unknown` and the declared text is kept, so
    a deny list is never passed by a licence written another way. The declared text is kept whenever it differs.
    """
    kept = list(dict.fromkeys(part.strip() for part in parts if part and part.strip() not in _NO_LICENSE))
    if not kept:
        return {"license_expression": "", "license_declared": ""}
    declared = " AND ".join(f"({part})" if _OPERATOR.search(part) and len(kept) > 1 else part for part in kept)
    mapped = [to_spdx(part) for part in kept]
    if any(expression is None for expression in mapped):
        for part, expression in zip(kept, mapped, strict=True):
            if expression is None:
                warn(
                    f"the licence {part[:200]!r} is not an SPDX id, expression, known name, URL or classifier; "
                    "recorded as unknown"
                )
        return {"license_expression": UNKNOWN, "license_declared": clean_text(declared, limit=LICENSE_LIMIT)}
    unique = list(dict.fromkeys(e for e in mapped if e))
    # AND binds tighter than OR, so an expression with OR must be bracketed before it is ANDed with others.
    joined = " AND ".join(f"({part})" if _OPERATOR.search(part) and len(unique) > 1 else part for part in unique)
    expression = unique[0] if len(unique) == 1 else (spdx_expression(joined) or joined)  # one is normalised
    return {
        "license_expression": clean_text(expression, limit=LICENSE_LIMIT),
        "license_declared": "" if declared == expression else clean_text(declared, limit=LICENSE_LIMIT),
    }


def normalise_license_expression(text: str) -> str:
    """The SPDX-normalised form of an expression ("mit" → "MIT", "GPL-2.0+" → "GPL-2.0-or-later"), else text."""
    return spdx_expression(text) or text


def normalise_hash_algorithm(name: str) -> str:
    """One spelling for algorithms across formats: SPDX "SHA256" and CycloneDX "SHA-256" both become "SHA-256"."""
    upper = name.strip().upper().replace("_", "-")
    return _SHA_WITHOUT_DASH.sub(r"SHA-\1", upper)


def _text(value: Any, path: str) -> str:
    """An optional string field, NUL-free; numbers are accepted as text (some tools write 1.0 unquoted)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise EvidenceParseError("expected a string", location=path)
    return clean_text(value, limit=TEXT_LIMIT)


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EvidenceParseError("expected a JSON object", location=path)
    return value


def _array(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvidenceParseError("expected a JSON array", location=path)
    return value
