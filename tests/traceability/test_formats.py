"""Requirement/hazard/risk-control import and export: CSV, JSON and real ReqIF exports."""

import json

import pytest
from lxml import etree

from tests.samples import sample_bytes, sample_names
from traceability.formats import (
    ImportResult,
    ItemFormatError,
    ItemRecord,
    LinkRecord,
    read_csv,
    read_json,
    read_reqif,
    write_csv,
    write_json,
    xhtml_to_text,
)

# --- ReqIF: the real samples ----------------------------------------------------------------------------


def test_doors_capella_export_reads_its_one_requirement():
    result = read_reqif(sample_bytes("reqif/doors-rational-capella-vp.reqif"))

    assert result.source_format == "reqif"
    assert result.tool == "IBM Rational DOORS"
    assert result.warnings == []
    [record] = result.records
    assert record.identifier == "_xen_QMkhEee8KsfWrp9EJQ"  # no ReqIF.ForeignID: the SPEC-OBJECT IDENTIFIER
    assert record.kind == "requirement"
    assert record.title == "Requirement-1"  # the SPEC-OBJECT LONG-NAME
    assert record.text == "Requirement-1"  # ReqIF.Text, an <xhtml:div>
    assert record.status == ""
    assert record.attributes == (
        ("IE Object Type", "Requirement"),  # enumeration value resolved to its LONG-NAME
        ("IE PUID", "PUID-1"),
        ("spec_object_type", "Requirement Type"),
    )
    assert record.links == ()


def test_ibm_engineering_requirements_export_without_type_definitions_still_imports():
    result = read_reqif(sample_bytes("reqif/ibm-engineering-requirements-user-example.reqif"))

    assert result.tool == "IBM"
    [record] = result.records
    assert record.identifier == "_f05294de-d4cf-455d-9307-c130376dfd44"
    assert record.kind == "requirement"
    # <div xmlns="http://www.w3.org/1999/xhtml">&lt;New Header&gt; Template reqFile</div>: the first XHTML value
    assert record.text == "<New Header> Template reqFile"
    assert record.title == "<New Header> Template reqFile"
    # The second value's definition is not in the file: kept under its identifier; the empty third is dropped.
    assert record.attributes == (("_1f20e97d-8b0f-4f64-a093-deedc195e91a", "<New Header< Template reqFile"),)
    assert len(result.warnings) == 4
    assert "SPEC-OBJECT-TYPE _ee420d2b-599c-49ea-a298-6a732ece21eb is not defined" in result.warnings[0]
    assert result.warnings[0].startswith("line 16: ")
    assert "_05ee3f1d-6c0c-4e86-8bca-67cc5355db9c" in result.warnings[3]


def test_polarion_export_reads_heading_and_requirement():
    result = read_reqif(sample_bytes("reqif/polarion-roundtrip-export.reqif"))

    assert result.tool == "Polarion"  # SOURCE-TOOL-ID; REQ-IF-TOOL-ID is "Polarion ReqIF Roundtrip"
    assert result.warnings == []
    heading, requirement = result.records
    assert heading.identifier == "rmf-bd312f1z-fa7c-4de3-b8f3-ab105179fccc"
    assert heading.title == "Section 1"  # ReqIF.ChapterName
    # Polarion writes ATTRIBUTE-VALUE-STRING against the XHTML ReqIF.Text definition.
    assert heading.text == "Section text..."
    assert heading.attributes == (("spec_object_type", "Heading"),)

    assert requirement.identifier == "LOREM-818"  # ReqIF.ForeignID
    assert requirement.kind == "requirement"
    assert requirement.title == "SW: Lorem Ipsum"
    assert requirement.text == "The Lorem Ipsum shall do something."
    assert requirement.status == "draft"  # enumeration "Draft"
    assert requirement.attributes == (
        ("ReqIF.ForeignCreatedBy", "redacted@mail.com"),
        ("ReqIF.ForeignCreatedOn", "2023-03-15T10:46:58.611000+00:00"),
        ("spec_object_type", "System Requirement"),
    )


@pytest.mark.parametrize("name", sample_names("reqif"))
def test_every_reqif_sample_imports_with_titles_and_round_trips(name):
    result = read_reqif(sample_bytes(name))

    assert result.records
    for record in result.records:
        assert record.title and record.text
        assert "\x00" not in record.title + record.text
    by_id = sorted(result.records, key=lambda record: record.identifier)
    assert sorted(read_csv(write_csv(result.records)).records, key=lambda record: record.identifier) == by_id
    assert sorted(read_json(write_json(result.records)).records, key=lambda record: record.identifier) == by_id


# --- ReqIF: a hazard analysis with relations and every value type ---------------------------------------

REQIF_HEAD = b"""<?xml version="1.0" encoding="UTF-8"?>
<REQ-IF xmlns="http://www.omg.org/spec/ReqIF/20110401/reqif.xsd" xmlns:xhtml="http://www.w3.org/1999/xhtml">
"""


def _attribute_definition(kind, identifier, name):
    return f'<ATTRIBUTE-DEFINITION-{kind} IDENTIFIER="{identifier}" LONG-NAME="{name}"/>'


def _value(kind, definition, value):
    if kind == "XHTML":
        body = f"<THE-VALUE>{value}</THE-VALUE>"
        return (
            f"<ATTRIBUTE-VALUE-XHTML><DEFINITION><ATTRIBUTE-DEFINITION-XHTML-REF>{definition}"
            f"</ATTRIBUTE-DEFINITION-XHTML-REF></DEFINITION>{body}</ATTRIBUTE-VALUE-XHTML>"
        )
    if kind == "ENUMERATION":
        return (
            f"<ATTRIBUTE-VALUE-ENUMERATION><DEFINITION><ATTRIBUTE-DEFINITION-ENUMERATION-REF>{definition}"
            f"</ATTRIBUTE-DEFINITION-ENUMERATION-REF></DEFINITION><VALUES><ENUM-VALUE-REF>{value}"
            f"</ENUM-VALUE-REF></VALUES></ATTRIBUTE-VALUE-ENUMERATION>"
        )
    return (
        f'<ATTRIBUTE-VALUE-{kind} THE-VALUE="{value}"><DEFINITION><ATTRIBUTE-DEFINITION-{kind}-REF>{definition}'
        f"</ATTRIBUTE-DEFINITION-{kind}-REF></DEFINITION></ATTRIBUTE-VALUE-{kind}>"
    )


def _spec_object(identifier, type_ref, *values):
    return (
        f'<SPEC-OBJECT IDENTIFIER="{identifier}"><TYPE><SPEC-OBJECT-TYPE-REF>{type_ref}</SPEC-OBJECT-TYPE-REF>'
        f"</TYPE><VALUES>{''.join(values)}</VALUES></SPEC-OBJECT>"
    )


def _relation(type_ref, source, target):
    return (
        f'<SPEC-RELATION IDENTIFIER="rel-{source}-{target}"><TYPE><SPEC-RELATION-TYPE-REF>{type_ref}'
        f"</SPEC-RELATION-TYPE-REF></TYPE><SOURCE><SPEC-OBJECT-REF>{source}</SPEC-OBJECT-REF></SOURCE>"
        f"<TARGET><SPEC-OBJECT-REF>{target}</SPEC-OBJECT-REF></TARGET></SPEC-RELATION>"
    )


def _reqif(objects, relations=""):
    common = (
        _attribute_definition("STRING", "{t}-id", "ReqIF.ForeignID")
        + _attribute_definition("STRING", "{t}-name", "ReqIF.Name")
        + _attribute_definition("XHTML", "{t}-text", "ReqIF.Text")
    )
    types = "".join(
        f'<SPEC-OBJECT-TYPE IDENTIFIER="{t}" LONG-NAME="{name}"><SPEC-ATTRIBUTES>'
        + common.replace("{t}", t)
        + extra
        + "</SPEC-ATTRIBUTES></SPEC-OBJECT-TYPE>"
        for t, name, extra in (
            (
                "t-req",
                "Software Requirement",
                _attribute_definition("INTEGER", "d-priority", "Priority")
                + _attribute_definition("REAL", "d-weight", "Weight")
                + _attribute_definition("BOOLEAN", "d-safety", "Safety relevant")
                + _attribute_definition("DATE", "d-reviewed", "Reviewed on")
                + _attribute_definition("ENUMERATION", "d-status", "Status")
                + _attribute_definition("STRING", "d-comment", "Comment")
                + _attribute_definition("STRING", "d-sev-on-req", "Severity"),
            ),
            (
                "t-haz",
                "Hazard",
                _attribute_definition("STRING", "d-situation", "Hazardous Situation")
                + _attribute_definition("STRING", "d-harm", "Harm")
                + _attribute_definition("STRING", "d-severity", "Severity")
                + _attribute_definition("STRING", "d-residual", "Residual Risk"),
            ),
            ("t-rc", "Risk Control Measure", ""),
        )
    )
    relation_types = (
        '<SPEC-RELATION-TYPE IDENTIFIER="r-impl" LONG-NAME="Implements"/>'
        '<SPEC-RELATION-TYPE IDENTIFIER="r-mit" LONG-NAME="mitigates hazard"/>'
        '<SPEC-RELATION-TYPE IDENTIFIER="r-derived" LONG-NAME="Derived from"/>'
    )
    enum = (
        '<DATATYPE-DEFINITION-ENUMERATION IDENTIFIER="e-status" LONG-NAME="Status"><SPECIFIED-VALUES>'
        '<ENUM-VALUE IDENTIFIER="ev-approved" LONG-NAME="Approved"/></SPECIFIED-VALUES>'
        "</DATATYPE-DEFINITION-ENUMERATION>"
    )
    body = (
        "<THE-HEADER><REQ-IF-HEADER IDENTIFIER='h'><REQ-IF-TOOL-ID>Test exporter</REQ-IF-TOOL-ID></REQ-IF-HEADER>"
        f"</THE-HEADER><CORE-CONTENT><REQ-IF-CONTENT><DATATYPES>{enum}</DATATYPES>"
        f"<SPEC-TYPES>{types}{relation_types}</SPEC-TYPES>"
        f"<SPEC-OBJECTS>\n{objects}\n</SPEC-OBJECTS><SPEC-RELATIONS>\n{relations}\n</SPEC-RELATIONS>"
        "</REQ-IF-CONTENT></CORE-CONTENT></REQ-IF>"
    )
    return REQIF_HEAD + body.encode("utf-8")


HAZARD_ANALYSIS = _reqif(
    "\n".join(
        [
            _spec_object(
                "o-req",
                "t-req",
                _value("STRING", "t-req-id", "REQ-017"),
                _value("STRING", "t-req-name", "Alarm on occlusion"),
                _value(
                    "XHTML",
                    "t-req-text",
                    "<xhtml:div><xhtml:p>The pump shall <xhtml:b>alarm</xhtml:b> within 5 s.</xhtml:p>"
                    "<xhtml:ul><xhtml:li>audible</xhtml:li><xhtml:li>visible</xhtml:li></xhtml:ul>"
                    "<xhtml:ol><xhtml:li>stop</xhtml:li><xhtml:li>log</xhtml:li></xhtml:ol></xhtml:div>",
                ),
                _value("INTEGER", "d-priority", "2"),
                _value("REAL", "d-weight", "0.5"),
                _value("BOOLEAN", "d-safety", "true"),
                _value("DATE", "d-reviewed", "2024-05-01T12:00:00.5+02:00"),
                _value("ENUMERATION", "d-status", "ev-approved"),
                _value("STRING", "d-comment", "checked by QA"),
                _value("STRING", "d-sev-on-req", "high"),
            ),
            _spec_object(
                "o-req-parent",
                "t-req",
                _value("STRING", "t-req-id", "REQ-001"),
                _value("STRING", "t-req-name", "Safe infusion"),
            ),
            _spec_object(
                "o-haz",
                "t-haz",
                _value("STRING", "t-haz-id", "HAZ-3"),
                _value("STRING", "t-haz-name", "Occlusion"),
                _value("STRING", "d-situation", "Line blocked during infusion"),
                _value("STRING", "d-harm", "Under-dosing"),
                _value("STRING", "d-severity", "Serious"),
                _value("STRING", "d-residual", "Low"),
            ),
            _spec_object(
                "o-rc",
                "t-rc",
                _value("STRING", "t-rc-id", "RC-5"),
                _value("XHTML", "t-rc-text", "<xhtml:div>Pressure sensor<xhtml:br/>checks the line</xhtml:div>"),
            ),
        ]
    ),
    "\n".join(
        [
            _relation("r-impl", "o-rc", "o-req"),
            _relation("r-mit", "o-rc", "o-haz"),
            _relation("r-derived", "o-req", "o-req-parent"),
            _relation("r-derived", "o-req", "o-gone"),
            _relation("r-impl", "o-req", "o-rc"),
        ]
    ),
)


def test_reqif_hazard_analysis_reads_kinds_values_and_links():
    result = read_reqif(HAZARD_ANALYSIS)

    assert result.tool == "Test exporter"
    records = {record.identifier: record for record in result.records}
    assert list(records) == ["REQ-017", "REQ-001", "HAZ-3", "RC-5"]

    requirement = records["REQ-017"]
    assert requirement.kind == "requirement"
    assert requirement.title == "Alarm on occlusion"
    assert requirement.text == "The pump shall alarm within 5 s.\n- audible\n- visible\n1. stop\n2. log"
    assert requirement.status == "approved"
    assert dict(requirement.attributes) == {
        "Comment": "checked by QA",
        "Priority": "2",
        "Reviewed on": "2024-05-01T10:00:00.500000+00:00",
        "Safety relevant": "true",
        "Severity (attribute)": "high",  # not a hazard: kept, renamed so CSV does not read it as severity
        "Weight": "0.5",
        "spec_object_type": "Software Requirement",
    }
    assert requirement.links == (LinkRecord(kind="derives_from", target="REQ-001"),)

    hazard = records["HAZ-3"]
    assert hazard.kind == "hazard"
    assert hazard.hazardous_situation == "Line blocked during infusion"
    assert hazard.harm == "Under-dosing"
    assert hazard.severity == "Serious"
    assert hazard.residual_risk == "Low"
    assert hazard.probability == ""

    risk_control = records["RC-5"]
    assert risk_control.kind == "risk_control"
    assert risk_control.text == "Pressure sensor\nchecks the line"
    assert risk_control.title == "Pressure sensor"  # first line of the text
    assert risk_control.links == (
        LinkRecord(kind="implements", target="REQ-017"),
        LinkRecord(kind="mitigates", target="HAZ-3"),
    )


def test_reqif_warns_about_relations_to_unknown_objects_and_against_the_risk_chain():
    warnings = read_reqif(HAZARD_ANALYSIS).warnings

    assert len(warnings) == 2
    assert "unknown object(s) o-gone is skipped" in warnings[0]
    assert warnings[0].startswith("line ")
    assert "'implements' relation from requirement REQ-017 to risk_control RC-5" in warnings[1]


def test_reqif_with_entity_declaration_is_refused_xxe():
    document = b"""<?xml version="1.0"?>
<!DOCTYPE REQ-IF [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<REQ-IF xmlns="http://www.omg.org/spec/ReqIF/20110401/reqif.xsd"><CORE-CONTENT><REQ-IF-CONTENT><SPEC-OBJECTS>
<SPEC-OBJECT IDENTIFIER="a"><VALUES><ATTRIBUTE-VALUE-STRING THE-VALUE="&xxe;"/></VALUES></SPEC-OBJECT>
</SPEC-OBJECTS></REQ-IF-CONTENT></CORE-CONTENT></REQ-IF>"""

    with pytest.raises(ItemFormatError, match="declares entities") as caught:
        read_reqif(document)
    assert caught.value.location == "line 2"


def test_reqif_billion_laughs_is_refused():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10 if n > 1 else "&lol;" * 10}">' for n in range(1, 10)
    )
    document = f'<?xml version="1.0"?>\n<!DOCTYPE REQ-IF [{entities}]>\n<REQ-IF>&lol9;</REQ-IF>'.encode()

    with pytest.raises(ItemFormatError, match="entity declarations are refused"):
        read_reqif(document)


def test_reqif_external_dtd_reference_is_accepted_and_not_fetched():
    document = HAZARD_ANALYSIS.replace(
        b"<REQ-IF ", b'<!DOCTYPE REQ-IF SYSTEM "http://unreachable.invalid/reqif.dtd">\n<REQ-IF ', 1
    )

    assert len(read_reqif(document).records) == 4


@pytest.mark.parametrize(
    ("document", "location", "message"),
    [
        (HAZARD_ANALYSIS[:900], "line 3", "not well-formed"),
        (b"<?xml version='1.0'?>\n<coverage/>", "line 2", "root element is <coverage>"),
        (REQIF_HEAD + b"<THE-HEADER/></REQ-IF>", "line 2", "no CORE-CONTENT/REQ-IF-CONTENT"),
        (
            _reqif("<SPEC-OBJECT><VALUES/></SPEC-OBJECT>"),
            "line 4",
            "<SPEC-OBJECT> has no IDENTIFIER",
        ),
        (
            _reqif(
                '<SPEC-OBJECT IDENTIFIER="x"><VALUES>\n<ATTRIBUTE-VALUE-STRING THE-VALUE="v"/></VALUES></SPEC-OBJECT>'
            ),
            "line 5",
            "<ATTRIBUTE-VALUE-STRING> has no DEFINITION reference",
        ),
        (
            _reqif(
                _spec_object("a", "t-req", _value("STRING", "t-req-id", "REQ-1"))
                + "\n"
                + _spec_object("b", "t-req", _value("STRING", "t-req-id", "REQ-1"))
            ),
            "line 5",
            "item ID REQ-1 is also used by the SPEC-OBJECT on line 4",
        ),
    ],
)
def test_malformed_reqif_names_the_line(document, location, message):
    with pytest.raises(ItemFormatError) as caught:
        read_reqif(document)

    assert caught.value.location == location
    assert message in str(caught.value)


def test_xhtml_tables_and_objects_become_readable_lines():
    value = etree.fromstring(
        '<THE-VALUE xmlns:x="http://www.w3.org/1999/xhtml"><x:div><x:p>Limits</x:p><x:table>'
        "<x:tr><x:th>Rate</x:th><x:th>Max</x:th></x:tr><x:tr><x:td>basal</x:td><x:td>5 ml/h</x:td></x:tr>"
        '</x:table><x:object data="figure1.png" type="image/png"/></x:div></THE-VALUE>'
    )

    assert xhtml_to_text(value) == "Limits\nRate | Max\nbasal | 5 ml/h\n[figure1.png]"


# --- CSV ------------------------------------------------------------------------------------------------

CSV_ITEMS = (
    b"id,kind,title,text,status,severity,hazardous_situation,harm,implements,mitigates,derives_from,Owner,comment\r\n"
    b'REQ-017,requirement,Alarm on occlusion,"The pump shall alarm.\r\nWithin 5 s.",Approved,,,,,,REQ-001,ana,\r\n'
    b"REQ-001,,Safe infusion,,draft,,,,,,,,first draft\r\n"
    b"HAZ-3,hazard,Occlusion,,,Serious,Line blocked,Under-dosing,,,,,\r\n"
    b"RC-5,risk_control,Pressure sensor,,,,,,REQ-017; REQ-001,HAZ-3,,bo,\r\n"
    b",,,,,,,,,,,,\r\n"
)


def test_csv_reads_items_links_and_attributes():
    result = read_csv(CSV_ITEMS)

    assert result.source_format == "csv"
    assert result.warnings == []
    requirement, parent, hazard, risk_control = result.records
    assert requirement == ItemRecord(
        identifier="REQ-017",
        kind="requirement",
        title="Alarm on occlusion",
        text="The pump shall alarm.\nWithin 5 s.",
        status="approved",
        attributes=(("Owner", "ana"),),
        links=(LinkRecord(kind="derives_from", target="REQ-001"),),
    )
    assert parent.kind == "requirement"  # empty kind cell: from the REQ- prefix
    assert parent.attributes == (("comment", "first draft"),)
    assert (hazard.kind, hazard.severity, hazard.hazardous_situation, hazard.harm) == (
        "hazard",
        "Serious",
        "Line blocked",
        "Under-dosing",
    )
    assert risk_control.links == (
        LinkRecord(kind="implements", target="REQ-001"),
        LinkRecord(kind="implements", target="REQ-017"),
        LinkRecord(kind="mitigates", target="HAZ-3"),
    )


def test_semicolon_separated_excel_csv_with_bom_and_kind_from_id_prefix():
    data = (
        "\ufeffID;Title;Text;Hazardous Situation\r\n"
        "REQ-1;Überdruck erkennen;Druck > 2,5 bar;\r\n"
        "HAZ-2;Überdruck;;Schlauch geknickt\r\n"
        "RC-3;Drucksensor;;\r\n"
    )

    result = read_csv(data.encode("utf-8"))

    assert [(r.identifier, r.kind, r.title) for r in result.records] == [
        ("REQ-1", "requirement", "Überdruck erkennen"),
        ("HAZ-2", "hazard", "Überdruck"),
        ("RC-3", "risk_control", "Drucksensor"),
    ]
    assert result.records[0].text == "Druck > 2,5 bar"
    assert result.records[1].hazardous_situation == "Schlauch geknickt"


def test_csv_formula_cells_are_kept_as_plain_text():
    data = b'id,title,text,Owner\nREQ-1,=HYPERLINK("http://evil.example"),+1 mmHg,@SUM(A1)\nREQ-2,-5 dB margin,,\n'

    first, second = read_csv(data).records

    assert first.title == '=HYPERLINK("http://evil.example")'
    assert first.text == "+1 mmHg"
    assert first.attributes == (("Owner", "@SUM(A1)"),)
    assert second.title == "-5 dB margin"


def test_csv_tab_separated_with_blank_lines_above_the_header():
    result = read_csv(b"\n\nid\ttitle\tOwner\nREQ-1\tOne, two\tana\n")

    assert result.records == [
        ItemRecord(identifier="REQ-1", kind="requirement", title="One, two", attributes=(("Owner", "ana"),))
    ]


def test_csv_unknown_id_prefix_without_kind_is_a_requirement_with_a_warning():
    result = read_csv(b"id,title\nLOREM-818,Lorem\n")

    assert result.records[0].kind == "requirement"
    assert result.warnings == [
        "line 2: LOREM-818 has no kind and its ID prefix is not REQ-/HAZ-/RC-; imported as a requirement"
    ]


def test_csv_strips_nul_characters():
    record = read_csv(b"id,title,text\nREQ-1,Ti\x00tle,a\x00b\n").records[0]

    assert (record.title, record.text) == ("Title", "ab")


def test_csv_collects_every_row_error_with_its_line():
    data = (
        b"id,kind,title,text\n"
        b'REQ-1,requirement,Fine,"two\nlines"\n'  # lines 2-3
        b",requirement,No id,\n"  # line 4
        b"REQ-2,requirement,,\n"  # line 5
        b"REQ-3,feature,Odd kind,\n"  # line 6
        b"REQ-1,requirement,Again,\n"  # line 7
    )

    with pytest.raises(ItemFormatError) as caught:
        read_csv(data)

    assert caught.value.problems == (
        "line 4: column 'id' is empty; every item needs its ID (e.g. REQ-017)",
        "line 5: column 'title' is empty; every item needs a title",
        "line 6: column 'kind' is 'feature'; use one of requirement, hazard, risk_control",
        "line 7: id REQ-1 is already used on line 2",
    )
    assert caught.value.location == "line 4"
    assert str(caught.value).startswith("the CSV has 4 problems:\n- line 4: ")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"id,text\nREQ-1,x\n", "line 1: the header row has no title column; found: id, text"),
        (b"id,title,,x\nREQ-1,T,,\n", "line 1: column 3 has no name in the header row"),
        (b"id,title,Title\nREQ-1,T,T\n", "line 1: columns 2 and 3 are both 'title'"),
        (
            b"id,title,verifies\nREQ-1,T,TEST-1\n",
            "line 1: column 'verifies' cannot be imported: test links come from CI test reports",
        ),
        (b"id,title\nREQ-1,T,extra\n", "line 2: the row has 3 cells but the header has 2 columns"),
        (
            b"id,title,severity\nREQ-1,T,high\n",
            "line 2: column severity filled on a requirement; hazard fields belong to hazards only",
        ),
        (
            b"id,title,mitigates\nREQ-1,T,HAZ-1\n",
            "line 2: a requirement cannot have 'mitigates' links (HAZ-1); only a risk_control mitigates a hazard",
        ),
        (
            b"id,title,implements\nRC-1,T,HAZ-1\nHAZ-1,H,\n",
            "line 2: 'implements' link to HAZ-1 needs a requirement, it is a hazard",
        ),
        (b"id,title,derives_from\nREQ-1,T,REQ-1\n", "line 2: 'derives_from' link from REQ-1 to itself"),
        (
            b"id,title\nREQ-1,Caf\xe9\n",
            "line 2: the CSV is not UTF-8 text (byte 18); save it from the spreadsheet as 'CSV UTF-8'",
        ),
        (b"  \n", "the CSV is empty; it needs a header row (id, title, ...) and one row per item"),
        (
            b'id,title\nREQ-1,"unterminated\n',
            "line 2: the CSV cannot be read: unexpected end of data (check the quotes of the row that starts here)",
        ),
    ],
)
def test_csv_errors_name_the_line(data, problem):
    with pytest.raises(ItemFormatError) as caught:
        read_csv(data)

    assert problem in caught.value.problems


# --- JSON -----------------------------------------------------------------------------------------------

JSON_ITEMS = {
    "tool": "Jama export script",
    "items": [
        {
            "id": "HAZ-3",
            "kind": "hazard",
            "title": "Occlusion",
            "hazardous_situation": "Line blocked",
            "severity": 4,
            "probability": "P2",
            "initial_risk": "high",
            "residual_risk": "low",
            "acceptability": "acceptable",
            "harm": "Under-dosing",
        },
        {
            "id": "RC-5",
            "title": "Pressure sensor",
            "status": "Draft",
            "attributes": {"verification method": "test"},
            "links": [{"kind": "mitigates", "target": "HAZ-3"}, {"kind": "implements", "target": "REQ-017"}],
        },
    ],
}


def test_json_reads_hazard_fields_links_and_tool():
    result = read_json(json.dumps(JSON_ITEMS).encode())

    assert result.source_format == "json"
    assert result.tool == "Jama export script"
    hazard, risk_control = result.records
    assert hazard.hazard_fields() == {
        "hazardous_situation": "Line blocked",
        "harm": "Under-dosing",
        "severity": "4",
        "probability": "P2",
        "initial_risk": "high",
        "residual_risk": "low",
        "acceptability": "acceptable",
    }
    assert risk_control.kind == "risk_control"
    assert risk_control.status == "draft"
    assert risk_control.attributes == (("verification method", "test"),)
    assert risk_control.links == (
        LinkRecord(kind="implements", target="REQ-017"),
        LinkRecord(kind="mitigates", target="HAZ-3"),
    )


def test_json_accepts_a_top_level_list():
    result = read_json(b'[{"id": "REQ-1", "title": "One"}]')

    assert result.records == [ItemRecord(identifier="REQ-1", kind="requirement", title="One")]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            b'{"items": [{"id": "REQ-1", "title": "T"}',
            "line 1 column 41: the file is not valid JSON: Expecting ',' delimiter",
        ),
        (b'"REQ-1"', '$: the JSON must be {"items": [...]} or a list of items, not a string'),
        (b'{"things": []}', 'items: the JSON object has no "items" list'),
        (b'{"items": {"id": "REQ-1"}}', "items: must be a list of items, not an object"),
        (b'{"items": [], "tool": 3}', "tool: must be a string, not a number"),
        (
            b'{"items": [{"id": "REQ-1", "title": "T"}, "REQ-2"]}',
            "items[1]: must be an object with id, title, ..., not a string",
        ),
        (b'[{"title": "T"}]', "[0]: id is empty; every item needs its ID (e.g. REQ-017)"),
        (b'{"items": [{"id": "REQ-1", "title": ["T"]}]}', "items[0].title: must be a string, not an array"),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "kind": "epic"}]}',
            "items[0]: kind is 'epic'; use one of requirement, hazard, risk_control",
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T"}, {"id": "REQ-1", "title": "U"}]}',
            "items[1].id: id REQ-1 is already used at items[0]",
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "owner": "ana"}]}',
            "items[0].owner: unknown field; put tool-specific fields under items[0].attributes",
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "attributes": ["x"]}]}',
            "items[0].attributes: must be an object of name: text, not an array",
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "attributes": {"Title": "x"}}]}',
            "items[0].attributes.Title: 'Title' is an item field, not an attribute; move it up one level",
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "links": {"kind": "derives_from"}}]}',
            'items[0].links: must be a list of {"kind", "target"} objects, not an object',
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "links": ["REQ-2"]}]}',
            'items[0].links[0]: must be an object {"kind", "target"}, not a string',
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "links": [{"kind": "verifies", "target": "T-1"}]}]}',
            "items[0].links[0].kind: 'verifies' links cannot be imported: they come from CI test reports",
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "links": [{"kind": "traces", "target": "REQ-2"}]}]}',
            "items[0].links[0].kind: must be one of implements, mitigates, derives_from, not 'traces'",
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "links": [{"kind": "derives_from", "target": 2}]}]}',
            "items[0].links[0].target: must be the target item's ID as a non-empty string",
        ),
        (
            b'{"items": [{"id": "REQ-1", "title": "T", "links": [{"kind": "implements", "target": "REQ-2"}]}]}',
            "items[0]: a requirement cannot have 'implements' links (REQ-2); "
            "only a risk_control implements a requirement",
        ),
        (
            b'[{"id": "REQ-1", "title": "T", "harm": "burn"}]',
            "[0]: fields harm filled on a requirement; hazard fields belong to hazards only",
        ),
    ],
)
def test_json_errors_name_the_path(document, problem):
    with pytest.raises(ItemFormatError) as caught:
        read_json(document)

    assert problem in caught.value.problems


def test_json_collects_errors_from_every_item():
    document = b'{"items": [{"id": "REQ-1"}, {"title": "x"}, {"id": "REQ-3", "title": "ok", "links": 5}]}'

    with pytest.raises(ItemFormatError) as caught:
        read_json(document)

    assert [problem.split(":")[0] for problem in caught.value.problems] == ["items[0]", "items[1]", "items[2].links"]


def test_json_strips_nul_escapes():
    record = read_json(b'[{"id": "REQ-1", "title": "A\\u0000B"}]').records[0]

    assert record.title == "AB"


# --- round trips and determinism ------------------------------------------------------------------------

ROUND_TRIP_RECORDS = [
    ItemRecord(
        identifier="REQ-10",
        kind="requirement",
        title="=1+1 must stay text",
        text='- first\n- second, with a comma; and a semicolon\n"quoted"',
        status="approved",
        attributes=(("'=already escaped", "'=x"), ("Owner", "@ana"), ("comment", "-5")),
        links=(LinkRecord(kind="derives_from", target="REQ-2"),),
    ),
    ItemRecord(identifier="REQ-2", kind="requirement", title="Überdruck 'quoted'", text="Zeile 1\nZeile 2"),
    ItemRecord(
        identifier="HAZ-3",
        kind="hazard",
        title="Occlusion",
        hazardous_situation="Line blocked",
        harm="Under-dosing",
        severity="4",
        probability="P2",
        initial_risk="high",
        residual_risk="low",
        acceptability="acceptable",
    ),
    ItemRecord(
        identifier="RC-5",
        kind="risk_control",
        title="Pressure sensor",
        links=(
            LinkRecord(kind="implements", target="REQ-10"),
            LinkRecord(kind="implements", target="REQ-2"),
            LinkRecord(kind="mitigates", target="HAZ-3"),
        ),
    ),
]
SORTED_IDS = ["HAZ-3", "RC-5", "REQ-2", "REQ-10"]  # natural order: REQ-2 before REQ-10


def test_csv_round_trip_is_exact_and_sorted():
    written = write_csv(ROUND_TRIP_RECORDS)

    assert written.startswith("\ufeffid,kind,title,".encode())
    assert b"'=1+1 must stay text" in written  # escaped for spreadsheets
    records = read_csv(written).records
    assert [r.identifier for r in records] == SORTED_IDS
    assert sorted(records, key=lambda r: r.identifier) == sorted(ROUND_TRIP_RECORDS, key=lambda r: r.identifier)


def test_json_round_trip_is_exact_and_sorted():
    written = write_json(ROUND_TRIP_RECORDS)

    records = read_json(written).records
    assert [r.identifier for r in records] == SORTED_IDS
    assert sorted(records, key=lambda r: r.identifier) == sorted(ROUND_TRIP_RECORDS, key=lambda r: r.identifier)
    first = json.loads(written)["items"][0]
    assert list(first) == [
        "id",
        "kind",
        "title",
        "text",
        "status",
        "hazardous_situation",
        "harm",
        "severity",
        "probability",
        "initial_risk",
        "residual_risk",
        "acceptability",
        "attributes",
        "links",
    ]


def test_output_does_not_depend_on_input_order():
    reversed_records = list(reversed(ROUND_TRIP_RECORDS))

    assert write_csv(reversed_records) == write_csv(ROUND_TRIP_RECORDS)
    assert write_json(reversed_records) == write_json(ROUND_TRIP_RECORDS)


def test_csv_and_json_carry_the_same_records():
    via_csv = read_csv(write_csv(ROUND_TRIP_RECORDS)).records

    assert read_json(write_json(via_csv)).records == via_csv


def test_import_result_defaults():
    assert ImportResult(records=[]) == ImportResult(records=[], warnings=[], source_format="", tool="")


# --- content fingerprint --------------------------------------------------------------------------------


def _requirement(**changes):
    fields = {
        "identifier": "REQ-017",
        "kind": "requirement",
        "title": "Alarm on occlusion",
        "text": "The pump shall alarm.",
        "status": "draft",
        "attributes": (("Owner", "ana"), ("comment", "looks fine")),
    }
    return ItemRecord(**{**fields, **changes})


def test_fingerprint_ignores_status_and_comment():
    original = _requirement()

    assert _requirement(status="approved").content_fingerprint() == original.content_fingerprint()
    assert (
        _requirement(attributes=(("Owner", "ana"), ("comment", "please reword"))).content_fingerprint()
        == original.content_fingerprint()
    )
    assert _requirement(attributes=(("Owner", "ana"),)).content_fingerprint() == original.content_fingerprint()


def test_fingerprint_changes_with_content():
    original = _requirement().content_fingerprint()

    assert len(original) == 64
    assert _requirement(text="The pump shall alarm within 5 s.").content_fingerprint() != original
    assert _requirement(title="Alarm").content_fingerprint() != original
    assert _requirement(attributes=(("Owner", "bo"),)).content_fingerprint() != original
    assert _requirement(kind="hazard", severity="4").content_fingerprint() != original


def test_fingerprint_is_stable_across_reimport():
    first = read_reqif(HAZARD_ANALYSIS).records
    second = read_reqif(HAZARD_ANALYSIS).records

    assert [r.content_fingerprint() for r in first] == [r.content_fingerprint() for r in second]


def test_unknown_kind_cannot_be_constructed():
    with pytest.raises(ValueError, match="kind 'epic'"):
        ItemRecord(identifier="E-1", kind="epic", title="Epic")
