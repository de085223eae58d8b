"""Open311 GeoReport v2 documents as XML, laid out as the specification shows them.

GeoReport v2 serves every call as ``.json`` or ``.xml``. The XML forms are a root element
holding one element per item, each field a child element:

* ``GET services``   -- ``<services><service><service_code>..</service_code>...``
* ``GET requests``, ``GET requests/{id}`` and the ``POST requests`` answer --
  ``<service_requests><request><service_request_id>..`` (``null`` fields are empty
  elements; GridPulse's ``extended_attributes`` and the new case are nested elements);
* errors -- ``<errors><error><code>..</code><description>..</description></error>``.

Documents are built with :mod:`xml.etree.ElementTree`, which escapes text; characters that
XML 1.0 cannot carry at all (C0 controls other than tab/LF/CR, U+FFFE/U+FFFF, lone
surrogates) are dropped.

Examples
--------
>>> print(to_xml("services", "service", [{"service_code": "0101", "metadata": False}])
...       .decode())
<?xml version='1.0' encoding='utf-8'?>
<services><service><service_code>0101</service_code><metadata>false</metadata></service></services>
>>> b"&lt;b&gt;" in to_xml("service_requests", "request", [{"description": "<b>"}])
True
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

#: The media type of the XML answers.
MEDIA_TYPE = "application/xml; charset=utf-8"

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(parent: ET.Element, tag: str, value: Any) -> None:
    el = ET.SubElement(parent, tag)
    if value is None:
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _fill(el, str(k), v)
    elif isinstance(value, list | tuple):
        for v in value:
            _fill(el, "item", v)
    else:
        el.text = _text(value)


def to_xml(root: str, item: str, records: Sequence[Mapping[str, Any]]) -> bytes:
    """``<root><item><field>value</field>...</item>...</root>`` as UTF-8 bytes.

    Parameters
    ----------
    root, item
        Element names: ``services``/``service``, ``service_requests``/``request`` or
        ``errors``/``error``.
    records
        The JSON form of the answer (field names are the specification's, so they are valid
        element names).
    """
    top = ET.Element(root)
    for rec in records:
        el = ET.SubElement(top, item)
        for k, v in rec.items():
            _fill(el, str(k), v)
    return ET.tostring(top, encoding="utf-8", xml_declaration=True)


def errors_xml(body: Mapping[str, Any], status: int) -> bytes:
    """GridPulse's ``{"errors": [{code, message, row, column, fix}]}`` as GeoReport's
    ``<errors><error><code>HTTP status</code><description>..`` (plus GridPulse's key,
    row, column and fix)."""
    return to_xml("errors", "error", [
        {"code": status, "description": e.get("message"), "key": e.get("code"),
         "row": e.get("row"), "column": e.get("column"), "fix": e.get("fix")}
        for e in body.get("errors", [])])


__all__ = ["MEDIA_TYPE", "errors_xml", "to_xml"]
