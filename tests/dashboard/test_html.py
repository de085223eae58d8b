"""The one escaping rule (``dashboard/_html.py``): HTML text, Markdown, script data, tooltips.

Tiny cases with known output, then properties over any string: what reaches HTML parses back
to the same text with no element of its own, what reaches Markdown renders (CommonMark, by
markdown-it-py) to the same text with no link/image/HTML, and what reaches a ``<script>``
cannot close it or run (checked by node's own JavaScript parser where node is installed).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd
import pytest
import shapely
from bs4 import BeautifulSoup
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from dashboard import _html, maps

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "</script><script>window.__pwned=1</script>",
    "`;window.__pwned=1;`",
    "${window.__pwned=1}",
    "\"'><svg onload=alert(1)>",
    "![b](http://198.51.100.1/beacon.png) [l](javascript:alert(1)) <http://198.51.100.1/a>",
    "\u202eevil\u200b\u200d\ufeff",
    "a\nb\r\n# c\n- d",
    "&lt;b&gt; &amp;",
    ":red[x] $x^2$ :smile: **b** _i_ ~~s~~ `c` | t |",
    "x" * 10_000,
]
# any text; NUL is excluded (CommonMark turns it into U+FFFD, and the store refuses it)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200)
SPICY = st.text(st.sampled_from(list("<>&\"'`${}()[]!*_#:/\\|~-=+.\n\r \u2028\u2029\u202e\u200bxy")), max_size=60)
TEXTS = st.one_of(ANY_TEXT, SPICY, st.sampled_from(HOSTILE))


# --------------------------------------------------------------------------- known answers


def test_text_and_attr_escape_the_five_characters() -> None:
    assert _html.text("<b>A & B</b>") == "&lt;b&gt;A &amp; B&lt;/b&gt;"
    assert _html.attr("x' onmouseover='alert(1)") == "x&#x27; onmouseover=&#x27;alert(1)"
    assert _html.text('"q"') == "&quot;q&quot;"
    assert _html.text(None) == "" and _html.text(float("nan")) == "" and _html.text(pd.NA) == ""
    assert _html.text(12) == "12"
    assert _html.escape is _html.text  # the wall's html.escape is this rule


def test_md_escapes_every_ascii_punctuation_and_joins_lines() -> None:
    assert _html.md("![x](http://h/b.png)") == "\\!\\[x\\]\\(http\u2060\\:\\/\\/h\\/b\\.png\\)"
    assert _html.md("www.a.cn a@b.cn") == "www\u2060\\.a\\.cn a\\@\u2060b\\.cn"
    assert _html.md("谢*") == "谢\\*"
    assert _html.md("a\nb\r\nc\rd") == "a b c d"
    assert _html.md("第1网格") == "第1网格"
    assert _html.md(None) == ""


def test_md_renders_as_the_text_itself() -> None:
    out = MarkdownIt("commonmark").render(_html.md("![b](http://198.51.100.1/b.png) <img src=x> **b**"))
    assert out == "<p>![b](http\u2060://198.51.100.1/b.png) &lt;img src=x&gt; **b**</p>\n"


def test_md_frame_escapes_text_cells_only() -> None:
    df = pd.DataFrame({"name": ["![i](http://h/i.png)", None], "n": [1, 2]})
    out = _html.md_frame(df)
    assert out["name"].tolist()[0] == _html.md("![i](http://h/i.png)")
    assert pd.isna(out["name"].tolist()[1])
    assert out["n"].tolist() == [1, 2]
    assert df["name"].iloc[0] == "![i](http://h/i.png)"  # the input is not changed


def test_js_is_data_that_cannot_close_a_script() -> None:
    assert _html.js("</script>") == '"\\u003c/script\\u003e"'
    assert _html.js({"a": "第1网格 & `${x}`"}) == '{"a":"第1网格 \\u0026 \\u0060\\u0024{x}\\u0060"}'
    assert _html.js("\u2028") == '"\\u2028"'


def test_tooltip_script_holds_the_text_as_json_data() -> None:
    tip = _html.Tooltip("SR`${window.__pwned=1}`</script>", label="id")
    m = folium.Map()
    marker = folium.CircleMarker([0, 0]).add_child(tip).add_to(m)
    html = m.get_root().render()
    script = _script_of(tip)
    assert f"{marker.get_name()}.bindTooltip(" in script
    assert "`" not in script and "${" not in script and "</script" not in script.lower()
    assert "SR`${window.__pwned=1}`" not in html  # nowhere in the page as code or markup
    rows = json.loads(re.search(r"\)\((\[\[.*?\]\])\)", script).group(1))
    assert rows == [["id", "SR`${window.__pwned=1}`</script>"]]


def test_folium_tooltip_would_run_the_backtick_payload() -> None:
    """Why folium's own Tooltip is banned: the text lands inside a template literal verbatim."""
    m = folium.Map()
    tip = folium.Tooltip("`${window.__pwned=1}`")
    folium.CircleMarker([0, 0]).add_child(tip).add_to(m)
    assert "`${window.__pwned=1}`" in _script_of(tip)


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_text_parses_back_to_the_same_text_and_no_element(s: str) -> None:
    soup = BeautifulSoup(f"<div title='{_html.attr(s)}'>{_html.text(s)}</div>", "html.parser")
    div = soup.find("div")
    assert [t.name for t in div.find_all(True)] == []
    # the parser may normalise line breaks; every other character comes back as it was
    assert div.get_text().split() == s.split()
    assert div["title"].split() == s.split()


_MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_md_renders_to_the_same_text_with_no_link_image_or_html(s: str) -> None:
    rendered = _MD.render(f"- **label**: {_html.md(s)}")
    soup = BeautifulSoup(rendered, "html.parser")
    tags = {t.name for t in soup.find_all(True)}
    assert tags <= {"ul", "li", "strong", "p"}, rendered
    li = soup.find("li")
    assert li is not None
    text = li.get_text()
    assert text.startswith("label:")
    assert text.removeprefix("label:").replace(_html.WORD_JOINER, "").split() == s.replace(_html.WORD_JOINER, "").split()
    # GitHub-flavoured autolinks (found in the text after parsing) cannot form either
    assert not re.search(r"(?i)(https?|ftp)://|www\.|[-.\w+]@[-\w]", text)


def _script_of(el) -> str:
    return el._template.module.script(el, {})


@settings(max_examples=200, deadline=None)
@given(TEXTS, TEXTS)
def test_tooltip_and_popup_scripts_never_carry_markup_or_template_syntax(value: str, label: str) -> None:
    for el in (_html.Tooltip(value, label=label), _html.Popup(value)):
        folium.CircleMarker([0, 0]).add_child(el)
        script = _script_of(el)
        for bad in ("<", "`", "${", "</script"):
            assert bad not in script, (bad, script)
        rows = json.loads(re.search(r"\)\((\[\[.*\]\])\),", script, re.S).group(1))
        assert rows[0][1] == value


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=4))
def test_polygon_layer_and_fields_tooltip_carry_names_as_data(names: list[str]) -> None:
    gdf = gpd.GeoDataFrame({"name": names, "code": [f"c{i}" for i in range(len(names))]},
                           geometry=[shapely.box(i, 0, i + 1, 1) for i in range(len(names))], crs=4326)
    layer = maps.PolygonLayer(gdf, name="x", styles=[{}], tooltip=[("name", "名称<b>"), ("code", "`c`")])
    fields = _html.FieldsTooltip([("name", "名称<b>")])
    folium.GeoJson(maps.feature_collection(gdf, properties=["name"])).add_child(fields)
    for script in (_script_of(layer), _script_of(fields)):
        assert "</script" not in script.lower()
        assert "innerHTML" not in script and "`" not in script and "${" not in script
    data = json.loads(layer.data_js)
    assert [f["properties"]["name"] for f in data["features"]] == names
    assert "<" not in layer.data_js and "<" not in layer.fields_js and "<" not in fields.fields_js


# --------------------------------------------------------------------------- real JavaScript


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_node_runs_the_tooltip_scripts_without_running_the_payloads() -> None:
    """Node parses and runs the generated scripts against a recording stand-in for Leaflet.

    The part under test is the script text and :data:`_html.TEXT_TIP_JS`; the stand-in only
    records what ``bindTooltip``/``bindPopup`` receive (node has no DOM, so the handful of DOM
    calls the tip builder makes are recorded, not rendered).
    """
    values = [*HOSTILE, "第1网格", ""]
    parts = []
    for i, v in enumerate(values):
        tip = _html.Tooltip(v, label=v)
        pop = _html.Popup(v)
        parent = folium.CircleMarker([0, 0])
        parent.add_child(tip)
        parent.add_child(pop)
        name = parent.get_name()
        parts.append(f"var {name} = mk({i});\n{_script_of(tip)}\n{_script_of(pop)}")
    prelude = """
    globalThis.window = globalThis; window.__pwned = 0; globalThis.alert = function () { window.__pwned = 2; };
    function node(tag) { return {tag: tag, kids: [], textContent: '', appendChild: function (k) { this.kids.push(k); return k; }}; }
    globalThis.document = {createElement: node, createTextNode: function (t) { var n = node('#text'); n.textContent = t; return n; }};
    function text(n) { return n.tag === '#text' || n.tag === 'bdi' || n.tag === 'b' ? n.textContent : n.kids.map(text).join(''); }
    var got = {};
    function mk(i) { return {bindTooltip: function (c, o) { got['t' + i] = text(c); },
                             bindPopup: function (c, o) { got['p' + i] = text(c); }}; }
    """
    src = prelude + "\n".join(parts) + "\nconsole.log(JSON.stringify({pwned: window.__pwned, got: got}));"
    out = subprocess.run([NODE, "-e", src], capture_output=True, text=True, timeout=60, check=True)
    res = json.loads(out.stdout)
    assert res["pwned"] == 0
    for i, v in enumerate(values):
        shown = v if len(v) <= _html.TIP_MAX_CHARS else v[:_html.TIP_MAX_CHARS] + "…"
        assert res["got"][f"p{i}"] == (shown or "")
        assert res["got"][f"t{i}"] == v + " " + (shown or "")


# --------------------------------------------------------------------------- no way around it


_BANNED = {"Tooltip", "Popup", "GeoJsonTooltip", "GeoJsonPopup"}


def test_no_dashboard_module_hands_text_to_folium_tooltips_or_popups() -> None:
    """folium's tooltips/popups paste text into a template literal or innerHTML: use _html's."""
    found = []
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            base = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else None
            if base in ("folium", "plugins") and f.attr in _BANNED:
                found.append(f"{path.name}:{node.lineno} folium.{f.attr}")
            if base in ("folium", "plugins"):
                for kw in node.keywords:
                    if kw.arg in ("tooltip", "popup") and not (
                            isinstance(kw.value, ast.Constant) and kw.value.value is None):
                        found.append(f"{path.name}:{node.lineno} {kw.arg}=")
    assert found == []
