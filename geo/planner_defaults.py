"""The planner's defaults, in one place: the band of each level, the walking radius and the
weights of the objective.

Every default of the re-partitioning engine (:class:`~geo.partition.state.PartitionProblem`,
:func:`~geo.partition.adapter.repartition`), of the saved-plan checks (``layers.plans``), of the
planner page and of the ``gridpulse repartition`` command is read from :data:`DEFAULTS`, so that
changing one number here changes it everywhere.

A leaf module beside the :mod:`geo.partition` package rather than inside it: importing any
module of the package runs the package's ``__init__``, which loads geopandas, and
``gridpulse --help`` (which needs the CLI's defaults) must stay free of heavy imports
(``tests/cli/test_startup.py``). ``geo.partition`` re-exports :data:`DEFAULTS`.

Examples
--------
>>> DEFAULTS.grid_band, DEFAULTS.band("community"), DEFAULTS.band("grid", balance="population")
((300.0, 500.0), (2000.0, 4000.0), (750.0, 1250.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULTS", "LEVEL_BANDS", "PlannerDefaults"]


@dataclass(frozen=True)
class PlannerDefaults:
    """Default options of the planner.

    Parameters
    ----------
    grid_band, community_band
        Inclusive households band of a grid (DOMAIN: 300-500 households per urban grid) and of
        a community (2,000-4,000).
    persons_per_household
        Residents per household: the population band is the households band times this.
    radius_m
        Every home within this walk (metres) of its region's service point.
    compactness_weight, disruption_weight, street_weight, walk_soft_weight
        Soft weights of the objective: Polsby-Popper, households moved, boundary off streets,
        mean walk.
    band_weight, walk_weight
        Weights of the hard terms (far above the soft ones).
    path_cost, street_cost, barrier_cost
        Cost of a metre of boundary along a footpath / street / barrier (across a block: 1).
    min_polsby_popper
        Regions below it get a ``low_compactness`` warning.
    max_snap_m
        Homes farther than this from any walkable road are off the network.
    n_starts
        Search starts per container.
    time_limit_s
        The planner page's wall-clock cap per container (the engine and the CLI have none by
        default: the step budget alone decides, which makes the output reproducible).
    """

    grid_band: tuple[float, float] = (300.0, 500.0)
    community_band: tuple[float, float] = (2000.0, 4000.0)
    persons_per_household: float = 2.5
    radius_m: float = 1000.0
    compactness_weight: float = 1.0
    disruption_weight: float = 1.0
    street_weight: float = 0.5
    walk_soft_weight: float = 0.5
    band_weight: float = 100.0
    walk_weight: float = 100.0
    path_cost: float = 0.6
    street_cost: float = 0.3
    barrier_cost: float = 0.0
    min_polsby_popper: float = 0.2
    max_snap_m: float = 300.0
    n_starts: int = 3
    time_limit_s: float = 2.0

    def band(self, level: Literal["grid", "community"] | str = "grid", *,
             balance: Literal["households", "population"] | str = "households") -> tuple[float, float]:
        """The default band of ``level`` for the quantity ``balance``."""
        if level not in ("grid", "community"):
            raise ValueError(f"level must be 'grid' or 'community', got {level!r}")
        lo, hi = self.grid_band if level == "grid" else self.community_band
        if balance == "population":
            return lo * self.persons_per_household, hi * self.persons_per_household
        return lo, hi


#: The planner's defaults (read-only).
DEFAULTS = PlannerDefaults()

#: The default households band of each level (x ``persons_per_household`` when balancing population).
LEVEL_BANDS: dict[str, tuple[float, float]] = {"grid": DEFAULTS.grid_band,
                                               "community": DEFAULTS.community_band}
