"""The planner's presentation of the partition engine: grid codes, Chinese names, layer kinds, staff.

:mod:`geo.partition` redraws regions without knowing what they are called; this module says
how the administrative ladder names them:

* :class:`GridNaming`: a new grid is coded after DB11/T 2157-2023 (12-digit community code +
  3-digit sequence, skipping locked codes), named ``<community>第<n>网格``, kind
  ``comprehensive``, its parent in ``community_code``; at community level a new community is
  ``<9-digit sub-district><3-digit sequence>``, ``<sub-district>第<n>社区``, parent
  ``subdistrict_code``;
* :func:`repartition`: the engine's adapter with that naming (what the CLI and the page call);
* :func:`grid_staff`: full-time workers and A/B posts per grid from the ``workers`` layer;
* :data:`ContainerPlan`: one container's editable engine state (the page edits
  ``plan.partition`` and calls ``plan.describe``).

Examples
--------
>>> GridNaming("grid").codes("320106001001", 2, reserved={"320106001001001"})
['320106001001002', '320106001001003']
>>> GridNaming("grid").attributes("320106001001", "甲社区", 2)["name"]
'甲社区第2网格'
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import pandas as pd

from geo.partition import AB_POSTS_PER_GRID, ContainerState, RepartitionResult
from geo.partition import repartition as _engine
from geo.partition.plan import sequence_codes

__all__ = ["AB_POSTS_PER_GRID", "ContainerPlan", "GridNaming", "grid_staff", "repartition"]

#: One container's editable engine state (cells, proposal, units' rows), as the page edits it.
ContainerPlan = ContainerState

_LEVELS: dict[str, dict[str, Any]] = {
    "grid": {"parent": "community_code", "suffix": "网格", "seq": 3},
    "community": {"parent": "subdistrict_code", "suffix": "社区", "seq": 3},
}


@dataclass(frozen=True)
class GridNaming:
    """Codes, names and kinds of new grids (``level="grid"``) or communities (``"community"``)."""

    level: Literal["grid", "community"] = "grid"

    @property
    def parent_col(self) -> str:
        return str(_LEVELS[self.level]["parent"])

    def codes(self, container_code: str, k: int, reserved: Collection[str] = ()) -> list[str]:
        """The container's code and a sequence number, skipping ``reserved`` (locked) codes."""
        width = int(_LEVELS[self.level]["seq"])
        return sequence_codes(lambda seq: f"{container_code}{seq:0{width}d}", k, reserved)

    def attributes(self, container_code: str, container_name: str, seq: int) -> dict[str, Any]:
        return {"name": f"{container_name}第{seq}{_LEVELS[self.level]['suffix']}",
                "kind": "comprehensive", self.parent_col: container_code}

    def defaults(self, code: str) -> dict[str, Any]:
        width = int(_LEVELS[self.level]["seq"])
        return {"name": code, "kind": "comprehensive", self.parent_col: code[:-width]}


def repartition(units: gpd.GeoDataFrame, containers: gpd.GeoDataFrame, *,
                level: Literal["grid", "community"] = "grid", **options: Any) -> RepartitionResult:
    """:func:`geo.partition.repartition` with the grid codes and names of :class:`GridNaming`.

    Every keyword of the engine is accepted (``roads``, ``band``, ``compounds``, ``locked``...).
    """
    return _engine(units, containers, level=level, naming=GridNaming(level), **options)


def grid_staff(workers: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per grid code, from the ``workers`` layer's current assignments: ``full_time`` (workers
    with role ``full_time``) and ``ab_posts`` (workers on an ``A`` or ``B`` post)."""
    if workers is None or not len(workers) or "grid_code" not in workers.columns:
        return {}
    code = workers["grid_code"].astype("string")
    role = workers["role"].astype("string") if "role" in workers.columns else pd.Series(pd.NA, index=workers.index)
    post = (workers["post"].astype("string").str.strip().str.upper() if "post" in workers.columns
            else pd.Series(pd.NA, index=workers.index))
    df = pd.DataFrame({"code": code, "full_time": (role == "full_time").fillna(False).astype(int),
                       "ab_posts": post.isin(["A", "B"]).fillna(False).astype(int)}).dropna(subset=["code"])
    agg = df.groupby("code")[["full_time", "ab_posts"]].sum()
    return {str(c): {"full_time": int(r.full_time), "ab_posts": int(r.ab_posts)}
            for c, r in zip(agg.index, agg.itertuples(index=False), strict=True)}
