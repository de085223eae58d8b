"""The GeoReport XML serializer: layout, escaping, values XML cannot carry."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from gridpulse.api import wants_xml
from gridpulse.open311_xml import errors_xml, to_xml


def test_layout_nulls_booleans_and_nesting() -> None:
    doc = ET.fromstring(to_xml("service_requests", "request", [
        {"service_request_id": "A-1", "media_url": None, "lat": 32.05, "metadata": True,
         "extended_attributes": {"stage": "handling"}}]))
    req = doc.find("request")
    assert [c.tag for c in req] == ["service_request_id", "media_url", "lat", "metadata",
                                    "extended_attributes"]
    assert req.findtext("media_url") == "" and req.findtext("lat") == "32.05"
    assert req.findtext("metadata") == "true"
    assert req.findtext("extended_attributes/stage") == "handling"


def test_errors_carry_the_http_status_as_code() -> None:
    doc = ET.fromstring(errors_xml({"errors": [{"code": "api.error.x", "message": "坏", "row": 3,
                                                "column": "lat", "fix": "改"}]}, 422))
    assert doc.findtext("error/code") == "422" and doc.findtext("error/description") == "坏"
    assert doc.findtext("error/row") == "3" and doc.findtext("error/key") == "api.error.x"


@given(st.text(max_size=60))
def test_any_text_round_trips_as_well_formed_xml(text: str) -> None:
    doc = ET.fromstring(to_xml("services", "service", [{"description": text}]))
    allowed = "".join(c for c in text if c in "\t\n\r" or (" " <= c and c not in "\ufffe\uffff"
                                                           and not "\ud800" <= c <= "\udfff"))
    got = doc.findtext("service/description")
    assert (got or "") == allowed.replace("\r\n", "\n").replace("\r", "\n")  # XML folds CRs


def test_format_from_path_then_accept() -> None:
    assert wants_xml("/open311/v2/services.xml", None)
    assert not wants_xml("/open311/v2/services.json", "application/xml")
    assert wants_xml("/open311/v2/services", "application/xml, application/json;q=0.5")
    assert wants_xml("/open311/v2/services", "text/xml")
    assert not wants_xml("/open311/v2/services", "application/json, application/xml")
    assert not wants_xml("/open311/v2/services", "*/*") and not wants_xml("/x", None)
