"""Requirement, hazard and risk-control exchange formats: CSV, JSON and ReqIF 1.0 in, CSV and JSON out.

Pure format layer: no Django, no database. Readers return `ItemRecord`s; the versioning service decides
what is new, changed or unchanged with `ItemRecord.content_fingerprint()`. One module per format (csv, json, reqif)
over the shared records (records.py); this package names what the rest of the app uses.
"""

from traceability.formats.csv import read_csv, write_csv
from traceability.formats.json import read_json, write_json
from traceability.formats.records import (
    HAZARD_FIELDS,
    ITEM_KINDS,
    LINK_DIRECTIONS,
    LINK_KINDS,
    UNVERSIONED_ATTRIBUTES,
    ImportResult,
    ItemFormatError,
    ItemRecord,
    LinkRecord,
    kind_from_identifier,
)
from traceability.formats.reqif import OBJECT_TYPE_ATTRIBUTE, read_reqif, xhtml_to_text

__all__ = [
    "HAZARD_FIELDS",
    "ITEM_KINDS",
    "LINK_DIRECTIONS",
    "LINK_KINDS",
    "OBJECT_TYPE_ATTRIBUTE",
    "UNVERSIONED_ATTRIBUTES",
    "ImportResult",
    "ItemFormatError",
    "ItemRecord",
    "LinkRecord",
    "kind_from_identifier",
    "read_csv",
    "read_json",
    "read_reqif",
    "write_csv",
    "write_json",
    "xhtml_to_text",
]
