"""Every XML parser refuses XXE, billion laughs and entity declarations, accepts external DTD references
without fetching them, and names the line of garbage or truncated input."""

import socket

import pytest

from evidence.parsers.base import EvidenceParseError
from evidence.parsers.coverage import parse_cobertura, parse_jacoco
from evidence.parsers.junit import parse_junit
from tests.samples import sample_bytes

# parser -> (root element, a child element that carries text)
PARSERS = {
    "junit": (parse_junit, b"testsuite", b'<testcase name="t" classname="&x;"><failure>&x;</failure></testcase>'),
    "cobertura": (parse_cobertura, b"coverage", b"<sources><source>&x;</source></sources>"),
    "jacoco": (parse_jacoco, b"report", b'<sessioninfo id="&x;" start="1" dump="2"/>'),
}
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE %(root)s [
  <!ENTITY x SYSTEM "file:///etc/passwd">
]>
<%(root)s name="n">%(body)s</%(root)s>
"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE %(root)s [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
  <!ENTITY x "&lol9;">
]>
<%(root)s name="n">%(body)s</%(root)s>
"""
INTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE %(root)s [<!ENTITY x "harmless looking">]>
<%(root)s name="n">%(body)s</%(root)s>
"""


def _document(template: bytes, kind: str) -> bytes:
    _, root, body = PARSERS[kind]
    return template % {b"root": root, b"body": body}


@pytest.mark.parametrize("kind", PARSERS)
@pytest.mark.parametrize("template", [XXE, BILLION_LAUGHS, INTERNAL_ENTITY], ids=["xxe", "billion-laughs", "entity"])
def test_entity_declarations_are_refused_with_the_doctype_line(kind, template):
    parser = PARSERS[kind][0]
    with pytest.raises(EvidenceParseError, match=r"line 2: the XML declares entities") as raised:
        parser(_document(template, kind))
    assert "root:" not in str(raised.value)  # nothing from /etc/passwd leaks into the message


@pytest.mark.parametrize("kind", PARSERS)
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_entity_declarations_in_utf16_are_refused_too(kind, encoding):
    # The byte scan for "<!ENTITY" cannot see UTF-16 text; the parsed DTD is checked as well.
    text = (
        _document(XXE, kind).decode().replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>')
    )
    data = text.encode("utf-16") if encoding == "utf-16" else text.encode(encoding)
    with pytest.raises(EvidenceParseError, match="declares entities|external entity") as raised:
        PARSERS[kind][0](data)
    assert "root:" not in str(raised.value)


@pytest.mark.parametrize("kind", PARSERS)
def test_a_doctype_hidden_after_a_long_comment_is_still_refused(kind):
    padding = b"<!--" + b"x" * 70_000 + b"-->\n"
    data = _document(BILLION_LAUGHS, kind).replace(b"<!DOCTYPE", padding + b"<!DOCTYPE", 1)
    with pytest.raises(EvidenceParseError, match="declares entities|entity"):
        PARSERS[kind][0](data)


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to open a socket (a DTD fetch would)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the parser tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_external_dtd_references_are_accepted_and_never_fetched(no_network):
    cobertura = (
        b'<?xml version="1.0"?>\n<!DOCTYPE coverage SYSTEM "http://127.0.0.1:9/coverage-04.dtd">\n'
        b'<coverage line-rate="0.5" lines-valid="2" lines-covered="1"><packages/></coverage>'
    )
    assert parse_cobertura(cobertura).line_rate == 0.5
    jacoco = (
        b'<?xml version="1.0"?><!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "file:///nonexistent/report.dtd">'
        b'<report name="r"><counter type="LINE" missed="1" covered="3"/></report>'
    )
    assert parse_jacoco(jacoco).lines_valid == 4
    junit = (
        b'<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/junit.dtd">'
        b'<testsuite name="s"><testcase name="t" classname="c"/></testsuite>'
    )
    assert parse_junit(junit).total == 1


def test_real_samples_with_external_dtds_parse_offline(no_network):
    assert parse_cobertura(sample_bytes("coverage/cobertura-istanbul-flat.xml")).lines_valid == 51
    assert parse_cobertura(sample_bytes("coverage/cobertura-simplecov.xml")).lines_valid == 362
    assert parse_jacoco(sample_bytes("coverage/jacoco-single-line.xml")).lines_valid == 6
    assert parse_jacoco(sample_bytes("coverage/jacoco-aggregate-groups.xml")).lines_valid == 9823


@pytest.mark.parametrize("kind", PARSERS)
@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"\x00\x01garbage \xff\xfe", 1),
        (b'{"json": true}', 1),
        (b'<?xml version="1.0"?>\n<a>\n<b>\n', 4),
        (b'<?xml version="1.0"?>\n<a>\n  <b attr="unterminated>\n</a>', 4),  # libxml2 notices on line 4
        (b"<a></b>", 1),
    ],
)
def test_garbage_and_truncated_xml_name_the_line(kind, data, line):
    with pytest.raises(EvidenceParseError, match=rf"^line {line}\b"):
        PARSERS[kind][0](data)


@pytest.mark.parametrize("kind", PARSERS)
def test_a_truncated_real_report_names_a_line(kind):
    sample = {
        "junit": "junit/go-junit-report.xml",
        "cobertura": "coverage/cobertura-simplecov.xml",
        "jacoco": "coverage/jacoco-aggregate-groups.xml",
    }[kind]
    data = sample_bytes(sample)
    with pytest.raises(EvidenceParseError, match=r"^line \d+"):
        PARSERS[kind][0](data[: len(data) // 2])
