"""The shared map module: coverage simplification, rounding, datums, assets, compactness."""

from __future__ import annotations

import json
import re

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import _html as html_rule
from dashboard import maps
from geo.crs import wgs84_to_gcj02
from geo.hexes import lonlat_to_cells

# A 3 x 2 lattice of grids near Gulou, ~500 m cells, with wiggly shared edges:
#
#   +----+----+----+
#   | 3  | 4  | 5  |
#   +~~~~+~~~~+~~~~+     ~ : each shared edge carries 200 tiny zig-zag vertices
#   | 0  | 1  | 2  |
#   +----+----+----+
X0, Y0, D = 118.76, 32.05, 0.005


def _wiggly_lattice(n_zig: int = 200, amp: float = 2e-6) -> gpd.GeoDataFrame:
    xs = np.linspace(X0, X0 + 3 * D, 3 * n_zig + 1)
    mid = Y0 + D + amp * np.where(np.arange(len(xs)) % 2 == 0, 1.0, -1.0)
    polys = []
    for row in range(2):
        for col in range(3):
            sl = slice(col * n_zig, (col + 1) * n_zig + 1)
            edge = list(zip(xs[sl], mid[sl], strict=True))
            x0, x1 = X0 + col * D, X0 + (col + 1) * D
            if row == 0:
                ring = [(x0, Y0), (x1, Y0), *reversed(edge)]
            else:
                ring = [*edge, (x1, Y0 + 2 * D), (x0, Y0 + 2 * D)]
            polys.append(shapely.Polygon(ring))
    return gpd.GeoDataFrame({"code": [f"3201060010010{i:02d}" for i in range(6)],
                             "name": [f"第{i + 1}网格" for i in range(6)]},
                            geometry=polys, crs=4326)


@pytest.fixture()
def lattice() -> gpd.GeoDataFrame:
    return _wiggly_lattice()


def _metric_area(geoms: np.ndarray) -> float:
    return float(gpd.GeoSeries(geoms, crs=4326).to_crs(32650).area.sum())


def test_coverage_simplify_removes_vertices_and_opens_no_gaps(lattice) -> None:
    assert shapely.coverage_is_valid(lattice.geometry.values)
    out = maps.prepare_polygons(lattice, tolerance_m=4.0)
    before = shapely.get_num_coordinates(lattice.geometry.values).sum()
    after = shapely.get_num_coordinates(out.geometry.values).sum()
    assert after < before / 20
    # still a coverage after rounding: no overlaps, shared edges identical
    assert shapely.coverage_is_valid(out.geometry.values)
    # no slivers: the union has no holes and the total area is kept
    union = shapely.union_all(out.geometry.values)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0
    assert _metric_area(out.geometry.values) == pytest.approx(_metric_area(lattice.geometry.values), rel=1e-4)
    assert list(out.index) == list(lattice.index) and list(out["code"]) == list(lattice["code"])


def test_near_coverage_is_cleaned_before_simplifying(lattice) -> None:
    # floating-point noise: every vertex of polygon 1 moved by ~1 cm
    noisy = lattice.copy()
    noisy.loc[1, "geometry"] = shapely.transform(noisy.geometry[1], lambda c: c + 1e-7)
    assert not shapely.coverage_is_valid(noisy.geometry.values)
    out = maps.simplify_coverage(noisy, tolerance_m=4.0)
    assert shapely.coverage_is_valid(out.geometry.values)


def test_overlapping_polygons_are_simplified_one_by_one() -> None:
    a = shapely.Point(118.77, 32.06).buffer(0.002, quad_segs=64)
    b = shapely.Point(118.771, 32.06).buffer(0.002, quad_segs=64)
    gdf = gpd.GeoDataFrame(geometry=[a, b], crs=4326)
    out = maps.simplify_coverage(gdf, tolerance_m=5.0)
    # overlaps are kept (dedicated grids may overlap); each shape stays close to its original
    assert out.geometry[0].intersects(out.geometry[1])
    for g0, g1 in zip(gdf.geometry, out.geometry, strict=True):
        assert g1.symmetric_difference(g0).area / g0.area < 0.04


def test_rounding_keeps_five_decimals(lattice) -> None:
    out = maps.prepare_polygons(lattice, tolerance_m=0.0)
    coords = shapely.get_coordinates(out.geometry.values)
    assert np.allclose(coords, np.round(coords, 5), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 30.0))
def test_simplify_keeps_coverage_for_any_tolerance(tol: float) -> None:
    lat = _wiggly_lattice(n_zig=40, amp=5e-6)
    out = maps.prepare_polygons(lat, tolerance_m=tol)
    assert shapely.coverage_is_valid(out.geometry.values)
    assert out.geometry.is_valid.all()
    assert _metric_area(out.geometry.values) == pytest.approx(_metric_area(lat.geometry.values), rel=1e-3)


def test_amap_draws_overlays_in_gcj02_and_clicks_come_back_in_wgs84(lattice) -> None:
    cfg = maps.MapConfig(basemap="amap")
    assert cfg.datum == "gcj02"
    out = maps.prepare_polygons(lattice, tolerance_m=0.0, datum=cfg.datum)
    x, y = lattice.geometry[0].exterior.coords[0]
    gx, gy = wgs84_to_gcj02(x, y)
    assert out.geometry[0].exterior.coords[0] == pytest.approx((round(float(gx), 5), round(float(gy), 5)))
    back = maps.click_to_wgs84({"lat": float(gy), "lng": float(gx)}, cfg)
    assert back == pytest.approx((x, y), abs=1e-6)
    assert maps.click_to_wgs84(None, cfg) is None


@pytest.mark.parametrize(
    ("kw", "expected"),
    [({"basemap": "osm"}, "osm"), ({"basemap": "osm", "offline": True}, "none"),
     ({"basemap": "tianditu"}, "none"), ({"basemap": "tianditu", "tianditu_key": "k"}, "tianditu"),
     ({"basemap": "xyz", "tiles_url": "http://127.0.0.1:8080/{z}/{x}/{y}.png", "offline": True}, "xyz"),
     ({"basemap": "amap", "offline": True}, "none")],
)
def test_effective_basemap(kw, expected) -> None:
    assert maps.MapConfig(**kw).effective_basemap == expected


def test_unknown_basemap_is_refused() -> None:
    with pytest.raises(maps.MapConfigError, match="basemap"):
        maps.MapConfig(basemap="google")


def _html(cfg: maps.MapConfig, gdf: gpd.GeoDataFrame) -> str:
    m = maps.base_map(cfg, bounds=gdf.total_bounds)
    maps.PolygonLayer(maps.prepare_polygons(gdf, datum=cfg.datum), name="grids",
                      styles=[{"color": "#333"}], tooltip=[("name", "名称")]).add_to(m)
    maps.Legend([("图层", [("#333", "网格", "line")])]).add_to(m)
    return maps.finish(m, cfg).get_root().render()


def test_offline_map_requests_nothing_beyond_the_server(lattice) -> None:
    html = _html(maps.MapConfig(basemap="osm", offline=True), lattice)
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert urls, "the map must still load Leaflet"
    assert all(u.startswith(maps.STATIC_URL) for u in urls), urls
    assert "tile.openstreetmap.org" not in html
    assert not re.search(r"https?://(?!www\.w3\.org)", html.split("</head>")[1])


def test_online_map_drops_unused_scripts(lattice) -> None:
    html = _html(maps.MapConfig(basemap="osm"), lattice)
    for unused in ("jquery", "bootstrap", "awesome-markers", "fontawesome"):
        assert unused not in html.lower()
    assert "tile.openstreetmap.org" in html


def test_tianditu_and_amap_tile_urls() -> None:
    m = maps.base_map(maps.MapConfig(basemap="tianditu", tianditu_key="KEY", lang="en"))
    html = m.get_root().render()
    assert "tianditu.gov.cn/vec_w" in html and "tk=KEY" in html and "eva_w" in html
    html = maps.base_map(maps.MapConfig(basemap="amap")).get_root().render()
    assert "autonavi.com" in html and "lang=zh_cn" in html


def test_local_assets_exist() -> None:
    from pathlib import Path

    static = Path(maps.__file__).parent / "static"
    for url in [u for u in maps._LOCAL_JS.values() if u] + [u for u in maps._LOCAL_CSS.values() if u]:
        assert (static / url.removeprefix(maps.STATIC_URL + "/")).is_file(), url


def test_polygon_layer_is_compact_and_smaller_than_naive_geojson(lattice) -> None:
    ours = _html(maps.MapConfig(basemap="none"), lattice)
    naive = folium.Map(tiles=None)
    folium.GeoJson(lattice, tooltip=folium.GeoJsonTooltip(["name"])).add_to(naive)
    naive_html = naive.get_root().render()
    assert len(ours.encode()) < len(naive_html.encode()) / 3
    assert "第1网格" in ours  # UTF-8 Chinese, not \\u escapes
    data = re.search(r"L\.geoJson\((\{.*?\}), \{", ours, re.S).group(1)
    fc = json.loads(data)
    assert len(fc["features"]) == 6 and set(fc["features"][0]["properties"]) == {"name", "_s"}


def test_polygon_layer_escapes_script_breakers() -> None:
    gdf = gpd.GeoDataFrame({"name": ["</script><b>x"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    layer = maps.PolygonLayer(gdf, name="x", styles=[{}], tooltip=[("name", "n")])
    assert "</script>" not in layer.data_js


def test_classify_is_aligned_and_handles_missing() -> None:
    c, e = maps.classify([5, 1, np.nan, 3, 9, 7])
    assert c[2] == -1 and (c[[0, 1, 3, 4, 5]] >= 0).all()
    assert e[0] == 1 and e[-1] == 9
    assert c[1] <= c[3] <= c[0] <= c[5] <= c[4]
    assert maps.classify([np.nan])[0].tolist() == [-1]
    assert maps.classify([2, 2, 2])[0].tolist() == [0, 0, 0]


def test_hex_layer_aggregates_points_into_cells() -> None:
    rng = np.random.default_rng(0)
    lon = 118.77 + rng.normal(0, 0.003, 5000)
    lat = 32.06 + rng.normal(0, 0.003, 5000)
    cells = lonlat_to_cells(lon, lat, res=9)
    counts = pd.Series(cells).value_counts().rename_axis("cell").reset_index(name="count")
    layer, legend = maps.hex_layer(counts, name="inc", label="事件", cfg=maps.MapConfig(basemap="none"))
    assert len(layer.data["features"]) == len(counts) < 5000
    assert sum(f["properties"]["n"] for f in layer.data["features"]) == 5000
    assert legend and all(kind == "fill" for _, _, kind in legend)


def test_preview_map_draws_points_lines_and_polygons(lattice) -> None:
    cfg = maps.MapConfig(basemap="none")
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([118.77, 118.771], [32.06, 32.061]), crs=4326)
    line = gpd.GeoDataFrame(geometry=[shapely.LineString([(118.76, 32.05), (118.78, 32.06)])], crs=4326)
    for gdf in (pts, line, lattice):
        html = maps.preview_map(gdf, cfg, name="预览", label="行").get_root().render()
        assert "L.geoJson(" in html


def test_available_basemaps_follow_settings() -> None:
    from layers.config import Settings

    assert maps.available_basemaps(Settings()) == ["osm", "amap", "none"]
    s = Settings(basemap="none", offline=True, tiles_url="http://127.0.0.1/{z}/{x}/{y}.png")
    assert maps.available_basemaps(s) == ["xyz", "none"]


@pytest.mark.parametrize(("basemap", "lang", "notice"), [
    ("osm", "zh", "底图无法加载"), ("osm", "en", "The basemap cannot load"), ("none", "zh", None)])
def test_a_basemap_that_cannot_load_says_so_on_the_map(basemap: str, lang: str, notice: str | None) -> None:
    m = maps.base_map(maps.MapConfig(basemap=basemap, lang=lang), bounds=(118.7, 32.0, 118.8, 32.1))
    page = m.get_root().render()
    if notice is None:  # no tiles, nothing to fail
        assert "tileerror" not in page
        return
    assert page.count('on("tileerror"') == 1 and "attributionControl.remove()" in page
    script = page[page.index("gp-tile-notice"):]
    assert html_rule.js(maps.t("ux.map.tiles_failed", lang))[:12] in script and "textContent" in script
