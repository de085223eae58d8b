"""Dashboard rendering on the full demo district: first-render time and map HTML size vs naive.

    .venv/bin/python benchmarks/render.py [--store PATH] [--preset full] [--repeat 3]

Prints JSON. For the grid explorer (district view, and the same with a population choropleth)
and the wall display:

* ``first_render_warm_s``: one page run in a *new* session with warm process caches (the store
  already read, polygons already simplified), median of ``--repeat`` (budget: 3 s). Measured
  with Streamlit's AppTest, which runs the real script; AppTest re-scans installed packages for
  v2 components on every run, which a running server does once at start, so that scan is
  switched off here. ``first_render_cold_s`` is the very first run (reads and prepares).
* ``map_bytes``: what the page sends to the browser for its map (the streamlit-folium
  arguments: Leaflet script, header, HTML and the dynamic layer group), UTF-8 bytes
  (budget: 2 MB).

The naive rendering of the same layers, measured in the same run: each layer as an
unsimplified ``folium.GeoJson`` with a ``GeoJsonTooltip`` of the same fields (the wall's grid
layer with a ``style_function`` for the status colours), sized the same way
(``naive_map_bytes``) and timed from the GeoDataFrames to the string (``naive_build_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import folium  # noqa: E402

APP = ROOT / "dashboard" / "app.py"
MB = 1024 * 1024


def _store(path: str | None, preset: str) -> str:
    if path:
        return path
    p = Path(tempfile.gettempdir()) / f"gridpulse-bench-{preset}.gpkg"
    if not p.exists():
        from data.demo import load_into
        from layers.store import open_store

        tmp = p.with_suffix(".tmp.gpkg")
        tmp.unlink(missing_ok=True)
        s = open_store(str(tmp))
        load_into(s, preset)
        s.close()
        tmp.rename(p)
    return str(p)


def _no_component_scan() -> None:
    from streamlit.components.v2 import component_manager

    component_manager.BidiComponentManager.discover_and_register_components = (  # type: ignore[method-assign]
        lambda self, *a, **k: None
    )


def _map_bytes(at) -> int:
    comps = at.get("component_instance")
    assert comps, "no map on the page"
    args = json.loads(comps[0].proto.json_args)
    return sum(len((args.get(k) or "").encode()) for k in ("script", "header", "html", "feature_group"))


def _page(params: dict[str, str], page: str | None, repeat: int) -> dict:
    from streamlit.testing.v1 import AppTest

    def once() -> tuple[float, object]:
        at = AppTest.from_file(str(APP), default_timeout=600)
        for k, v in params.items():
            at.query_params[k] = v
        if page:  # switching needs one run of the entry page first (not timed)
            at.run()
            at.switch_page(page)
        t0 = time.perf_counter()
        at.run()
        dt = time.perf_counter() - t0
        if at.exception:
            raise RuntimeError(at.exception[0].message)
        return dt, at

    cold, at = once()
    warm = [once()[0] for _ in range(repeat)]
    return {"first_render_cold_s": round(cold, 3), "first_render_warm_s": round(statistics.median(warm), 3),
            "map_bytes": _map_bytes(at)}


def _naive_bytes(m: folium.Map, fg: folium.FeatureGroup | None = None) -> int:
    """The same measure st_folium's arguments get, for a plain folium map."""
    import streamlit_folium as sf

    m.render()
    html = sf._get_html(m)
    header = sf._get_header(m)
    script = sf._get_map_string(m)
    extra = sf._get_feature_group_string(fg, map=m) if fg is not None else ""
    return sum(len(x.encode()) for x in (script, header, html, extra))


def _naive_explorer(url: str, *, metric: str | None) -> dict:
    from layers.store import open_store

    s = open_store(url)
    t0 = time.perf_counter()
    subs, coms, grids = s.read("subdistricts"), s.read("communities"), s.read("grids")
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = folium.Map(tiles=None)
    folium.GeoJson(subs, name="subdistricts", tooltip=folium.GeoJsonTooltip(["name", "code"])).add_to(m)
    folium.GeoJson(coms, name="communities", tooltip=folium.GeoJsonTooltip(["name", "code"])).add_to(m)
    comp = grids[grids["kind"] == "comprehensive"]
    style = None
    if metric:
        q = comp[metric].rank(pct=True)
        colours = dict(zip(comp["code"], ["#ffffb2" if v < .2 else "#fecc5c" if v < .4 else "#fd8d3c"
                                          if v < .6 else "#f03b20" if v < .8 else "#bd0026" for v in q],
                           strict=True))
        style = lambda f: {"fillColor": colours[f["properties"]["code"]], "fillOpacity": 0.7}  # noqa: E731
    folium.GeoJson(comp[["code", "name", "households", "population", "geometry"]], name="grids",
                   style_function=style,
                   tooltip=folium.GeoJsonTooltip(["name", "code", "households", "population"])).add_to(m)
    ded = grids[grids["kind"] == "dedicated"]
    folium.GeoJson(ded[["code", "name", "geometry"]], name="dedicated",
                   tooltip=folium.GeoJsonTooltip(["name", "code"])).add_to(m)
    size = _naive_bytes(m)
    return {"naive_map_bytes": size, "naive_build_s": round(time.perf_counter() - t0, 3),
            "naive_read_s": round(t_read, 3)}


def _naive_wall(url: str) -> dict:
    from dashboard import _wall
    from layers.store import open_store

    s = open_store(url)
    grids = s.read("grids")
    comp = grids[grids["kind"] == "comprehensive"][["code", "name", "geometry"]]
    subs = s.read("subdistricts")
    t0 = time.perf_counter()
    status = dict.fromkeys(comp["code"], 0)
    colours = [st["fillColor"] for st in _wall.STATUS_STYLES]
    m = folium.Map(tiles=None)
    fg = folium.FeatureGroup(name="status")
    folium.GeoJson(comp, style_function=lambda f: {"fillColor": colours[status[f["properties"]["code"]]]}
                   ).add_to(fg)
    folium.GeoJson(subs[["code", "name", "geometry"]]).add_to(fg)
    size = _naive_bytes(m, fg)
    return {"naive_map_bytes": size, "naive_build_s": round(time.perf_counter() - t0, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=None, help="GeoPackage with the demo (default: build one in TMPDIR)")
    ap.add_argument("--preset", default="full", choices=("small", "medium", "full"))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    url = _store(a.store, a.preset)
    for k in [k for k in os.environ if k.startswith("GRIDPULSE_") and k != "GRIDPULSE_TEST_PG"]:
        del os.environ[k]
    os.environ.update(GRIDPULSE_STORE=url, GRIDPULSE_BASEMAP="none")
    _no_component_scan()

    from layers.store import open_store

    s = open_store(url)
    counts = {n: s.count(n) for n in ("subdistricts", "communities", "grids", "incidents", "patrol_points")}
    from shapely import get_num_coordinates

    grids = s.read("grids")
    out: dict = {"preset": a.preset, "store": url, "rows": counts,
                 "grid_vertices": int(get_num_coordinates(grids.geometry.values).sum()),
                 "budget": {"first_render_warm_s": 3.0, "map_bytes": 2 * MB}}
    pages = {
        "explorer": ({}, None, lambda: _naive_explorer(url, metric=None)),
        "explorer_population": ({"metric": "population"}, None, lambda: _naive_explorer(url, metric="population")),
        "wall": ({}, "views/wall.py", lambda: _naive_wall(url)),
    }
    for name, (params, page, naive) in pages.items():
        r = _page(params, page, a.repeat)
        r.update(naive())
        r["bytes_ratio_naive_over_ours"] = round(r["naive_map_bytes"] / r["map_bytes"], 1)
        r["within_budget"] = r["first_render_warm_s"] <= 3.0 and r["map_bytes"] <= 2 * MB
        out[name] = r
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
