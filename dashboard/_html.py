"""The one escaping rule: user data meets HTML, JavaScript and Markdown only as text.

User data is anything that came from a file, a form, the API or the store: names, codes, ids,
addresses, descriptions, notes, error messages quoting a file. Wherever it meets the page it
goes through exactly one of these functions:

* :func:`text` / :func:`attr` - inside HTML we write ourselves (``st.markdown(...,
  unsafe_allow_html=True)``, legends, the wall's cards and feeds): ``& < > " '`` become
  entities;
* :func:`js` - inside a ``<script>`` (map layers): as JSON **data**, never as source code,
  with ``< > &``, backtick, ``$`` and the JavaScript line separators as ``\\u`` escapes, so
  nothing can close the script element or open a template substitution;
* map tooltips and popups (:class:`Tooltip`, :class:`Popup`, :class:`FieldsTooltip`,
  :data:`TEXT_TIP_JS`) - the browser builds them from DOM text nodes (``textContent``), so
  the value is never parsed as HTML at all;
* :func:`md` / :func:`md_frame` - inside Markdown (``st.markdown``, ``st.caption``,
  ``st.info``..., ``st.table`` cells, widget labels): every ASCII punctuation character is
  backslash-escaped, so no image (``![x](http://...)``), link, HTML tag, heading, list,
  emphasis, math or Streamlit directive (``:red[...]``) can form; the text shows as typed.

``folium.Tooltip``, ``folium.Popup``, ``folium.GeoJsonTooltip``/``GeoJsonPopup`` and
``tooltip=``/``popup=`` strings must not be given user data: folium pastes a tooltip's text
into a JavaScript template literal (a backtick or ``${...}`` runs code) and its GeoJSON
tooltips set ``innerHTML``.

Examples
--------
>>> text('<img src=x onerror="alert(1)">')
'&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
>>> md("![x](http://198.51.100.1/b.png)").replace(WORD_JOINER, "")
'\\\\!\\\\[x\\\\]\\\\(http\\\\:\\\\/\\\\/198\\\\.51\\\\.100\\\\.1\\\\/b\\\\.png\\\\)'
>>> js({"n": "</script>"})
'{"n":"\\\\u003c/script\\\\u003e"}'
"""

from __future__ import annotations

import html
import json
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from branca.element import MacroElement
from folium.template import Template

__all__ = ["FieldsTooltip", "Popup", "TEXT_TIP_JS", "TIP_MAX_CHARS", "Tooltip", "WORD_JOINER", "attr", "js", "md",
           "md_frame", "text"]

#: Longest value a map tooltip shows (longer ones end in "…"); a 10,000-character name must
#: not cover the map.
TIP_MAX_CHARS = 200

_MD_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")
#: GitHub-flavoured Markdown (Streamlit's) turns bare ``http://``, ``www.`` and ``a@b.c`` text
#: into links *after* parsing, so backslashes cannot stop it; an invisible word joiner after
#: the scheme, ``www`` or ``@`` does.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(?:https?|ftp|mailto|xmpp|www)(?=[:.])|@")
_JS_ESCAPES = {c: f"\\u{ord(c):04x}" for c in "<>&`$\u2028\u2029"}
_JS_SPECIAL = re.compile("[<>&`$\u2028\u2029]")


def _str(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    return str(value)


def text(value: Any) -> str:
    """``value`` as HTML text: ``& < > " '`` as entities (``None``/NaN: empty).

    Safe in element content and in quoted attribute values alike.

    Examples
    --------
    >>> text("a<b & 'c'")
    'a&lt;b &amp; &#x27;c&#x27;'
    >>> text(None)
    ''
    """
    return html.escape(_str(value), quote=True)


def attr(value: Any) -> str:
    """``value`` inside a quoted HTML attribute (``class='...'``, ``title="..."``).

    The same escaping as :func:`text` (quotes included); always quote the attribute.

    Examples
    --------
    >>> attr("x' onmouseover='alert(1)")
    'x&#x27; onmouseover=&#x27;alert(1)'
    """
    return text(value)


#: The wall display calls ``html.escape``; pointing it here keeps one rule.
escape = text


def md(value: Any) -> str:
    """``value`` as Markdown that renders exactly as the text (Streamlit's Markdown included).

    Every ASCII punctuation character gets a backslash (CommonMark's escape), so nothing in
    the value can open a link, an image, an HTML tag, emphasis, code, a heading or list,
    ``$`` math or a Streamlit ``:directive[...]``; a :data:`WORD_JOINER` after ``http``,
    ``www`` or ``@`` keeps GitHub-flavoured autolinks from forming. Line breaks become
    spaces: a value is one run of text and cannot start a block of its own.

    Examples
    --------
    >>> md("*a* [b](c)")
    '\\\\*a\\\\* \\\\[b\\\\]\\\\(c\\\\)'
    >>> md("谢*")
    '谢\\\\*'
    >>> md("line 1\\n# 2")
    'line 1 \\\\# 2'
    """
    s = _str(value).replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    s = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, s)
    return _MD_SPECIAL.sub(r"\\\1", s)


def md_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) are :func:`md` escaped.

    For ``st.table``, which renders every cell as Markdown. Numbers, dates and missing values
    are left as they are.
    """
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
            out[c] = pd.Series([md(v) if isinstance(v, str) else v for v in col], index=col.index,
                               dtype=object)
    out.columns = [md(c) if isinstance(c, str) else c for c in out.columns]
    if out.index.dtype == object:
        out.index = [md(i) if isinstance(i, str) else i for i in out.index]
    return out


def js(obj: Any) -> str:
    """``obj`` as a JSON literal that is safe anywhere inside a ``<script>`` element.

    Non-ASCII text stays UTF-8 (Chinese is not blown up into ``\\u`` escapes); ``< > &``,
    backtick, ``$`` and U+2028/U+2029 are ``\\u`` escaped, so ``</script>`` and ``<!--``
    cannot occur and the literal stays inert even if pasted into a template literal.

    Examples
    --------
    >>> print(js(["`${x}`", "第1网格"]))
    ["\\u0060\\u0024{x}\\u0060","第1网格"]
    """
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _JS_SPECIAL.sub(lambda m: _JS_ESCAPES[m.group(0)], s)


#: A JavaScript function ``(rows) -> HTMLElement`` for map tooltips: ``rows`` is
#: ``[[label, value], ...]`` (``label`` may be ``null``); each row becomes ``<b>label</b> value``
#: built from text nodes (never ``innerHTML``), a missing value shows ``—``, a long one is cut
#: to :data:`TIP_MAX_CHARS` characters, and each value sits in a ``<bdi>`` so that
#: right-to-left override characters in it cannot reorder the rest of the tooltip.
TEXT_TIP_JS = (
    "function (rows) {"
    " var d = document.createElement('div');"
    " rows.forEach(function (r, i) {"
    "  if (i) { d.appendChild(document.createElement('br')); }"
    "  if (r[0] != null) { var b = document.createElement('b'); b.textContent = String(r[0]);"
    "   d.appendChild(b); d.appendChild(document.createTextNode(' ')); }"
    "  var v = r[1] == null ? '\u2014' : String(r[1]);"
    f"  if (v.length > {TIP_MAX_CHARS}) {{ v = v.slice(0, {TIP_MAX_CHARS}) + '\u2026'; }}"
    "  var s = document.createElement('bdi'); s.textContent = v; d.appendChild(s);"
    " });"
    " return d; }"
)


class _Bound(MacroElement):
    """Base: binds a tooltip/popup built by :data:`TEXT_TIP_JS` to the parent layer."""

    _method = "bindTooltip"
    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.{{ this._method }}(
            ({{ this.tip_js }})({{ this.rows_js }}), {{ this.options_js }});
        {% endmacro %}
        """
    )

    def __init__(self, value: Any, *, label: Any = None, **options: Any) -> None:
        super().__init__()
        self._name = type(self).__name__
        self.rows = [[None if label is None else _str(label), _str(value)]]
        self.options = options

    @property
    def tip_js(self) -> str:
        return TEXT_TIP_JS

    @property
    def rows_js(self) -> str:
        return js(self.rows)

    @property
    def options_js(self) -> str:
        return js(self.options)


class Tooltip(_Bound):
    """A safe replacement for ``folium.Tooltip(text)``: ``value`` shown as text on hover.

    Add it to a marker or path: ``_html.Tooltip(case_id).add_to(marker)``.

    Parameters
    ----------
    value
        Any text (a case id with backticks, ``${...}`` and ``</script>`` shows as typed).
    label
        An optional bold label before the value.
    **options
        Leaflet tooltip options (``sticky=True``, ``permanent=True``...).
    """

    _method = "bindTooltip"

    def __init__(self, value: Any, *, label: Any = None, sticky: bool = True, **options: Any) -> None:
        super().__init__(value, label=label, sticky=sticky, **options)


class Popup(_Bound):
    """A safe replacement for ``folium.Popup(text)``: ``value`` shown as text on click."""

    _method = "bindPopup"


class FieldsTooltip(MacroElement):
    """A safe replacement for ``folium.GeoJsonTooltip``: property values shown as text.

    Add it to a ``folium.GeoJson``: on hover each ``(column, label)`` of ``fields`` is shown as
    ``label value`` for the hovered feature, built from text nodes.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var F = {{ this.fields_js }}, T = {{ this.tip_js }};
            {{ this._parent.get_name() }}.bindTooltip(function (layer) {
                var p = (layer.feature && layer.feature.properties) || {};
                return T(F.map(function (x) { return [x[1], p[x[0]]]; }));
            }, {sticky: true});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, fields: Sequence[tuple[str, str]] | Mapping[str, str]) -> None:
        super().__init__()
        self._name = "FieldsTooltip"
        pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        self.fields = [[str(c), _str(lbl)] for c, lbl in pairs]

    @property
    def fields_js(self) -> str:
        return js(self.fields)

    @property
    def tip_js(self) -> str:
        return TEXT_TIP_JS
