"""A hand-drawn district for the intake tests: two sub-districts side by side, one grid each.

::

    lat 32.060 +--------------+--------------+
               | 320106001    | 320106002    |
               | grid A       | grid B       |
               | worker W1    | worker W2    |
    lat 32.050 +--------------+--------------+
            118.770        118.780        118.790

Accounts (with API tokens): ``hotline-a`` (command centre of sub-district A), ``hotline`` (the
district's command centre), ``w1`` (grid worker of A, whose worker id is ``w1``), ``dept``
(urban-management handler of the district).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

SUB_A, SUB_B = "320106001", "320106002"
GRID_A, GRID_B = "320106001001001", "320106002001001"
#: A point inside each grid (lon, lat).
IN_A = (118.775, 32.055)
IN_B = (118.785, 32.055)


def _box(x0: float, x1: float) -> shapely.Polygon:
    return shapely.box(x0, 32.05, x1, 32.06)


def layers() -> dict[str, pd.DataFrame]:
    """The tiny district's layers (no incidents yet)."""
    a, b = _box(118.77, 118.78), _box(118.78, 118.79)
    g = lambda d, geoms: gpd.GeoDataFrame(d, geometry=geoms, crs=4326)  # noqa: E731
    return {
        "districts": g({"code": ["320106"], "name": ["测试区"]}, [_box(118.77, 118.79)]),
        "subdistricts": g({"code": [SUB_A, SUB_B], "name": ["甲街道", "乙街道"],
                           "district_code": ["320106", "320106"]}, [a, b]),
        "communities": g({"code": [SUB_A + "001", SUB_B + "001"], "name": ["甲社区", "乙社区"],
                          "subdistrict_code": [SUB_A, SUB_B]}, [a, b]),
        "grids": g({"code": [GRID_A, GRID_B], "name": ["甲网格", "乙网格"],
                    "kind": ["comprehensive", "comprehensive"], "dedicated_type": [None, None],
                    "community_code": [SUB_A + "001", SUB_B + "001"], "leader": [None, None],
                    "workers": [1, 1], "households": [100, 100], "population": [250, 250]},
                   [a, b]),
        "workers": pd.DataFrame({"id": ["w1", "W2"], "name": ["张三", "李四"],
                                 "phone": [None, None], "id_number": [None, None],
                                 "role": ["full_time", "full_time"], "grid_code": [GRID_A, GRID_B],
                                 "post": [None, None]}),
    }


def fill(store: Any) -> dict[str, str]:
    """Write the district and create the accounts; returns ``{username: api token}``."""
    from layers.accounts import create_account
    from layers.apitokens import issue_api_token

    store.write(layers(), mode="replace", actor="tests")
    spec = {"hotline-a": ("command_centre", SUB_A, ""), "hotline": ("command_centre", "320106", ""),
            "w1": ("grid_worker_full", GRID_A, ""), "dept": ("department", "320106",
                                                             "urban_management")}
    tokens = {}
    for user, (role, scope, dept) in spec.items():
        create_account(store, user, "correct horse battery", role=role, scope_code=scope,
                       department=dept, actor="tests")
        tokens[user] = issue_api_token(store, user, actor="tests")
    return tokens
