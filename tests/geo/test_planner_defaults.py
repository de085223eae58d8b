"""One set of planner defaults: the engine, the saved-plan checks, the page and the CLI read it."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

import numpy as np
import pytest

from geo.partition import DEFAULTS, LEVEL_BANDS, PartitionProblem, UnitGraph, repartition
from geo.planner_defaults import PlannerDefaults


def test_levels_and_population_band() -> None:
    assert DEFAULTS.band("grid") == (300.0, 500.0) == LEVEL_BANDS["grid"]
    assert DEFAULTS.band("community") == (2000.0, 4000.0) == LEVEL_BANDS["community"]
    assert DEFAULTS.band("grid", balance="population") == (750.0, 1250.0)
    with pytest.raises(ValueError, match="level"):
        DEFAULTS.band("street")
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.radius_m = 5.0  # type: ignore[misc]


def test_engine_problem_and_adapter_take_the_defaults() -> None:
    g = UnitGraph.lattice(2, 1, weight=np.full(2, 100.0), cell_m=100.0)
    p = PartitionProblem(g)
    for f in ("radius_m", "compactness_weight", "disruption_weight", "street_weight",
              "walk_soft_weight", "band_weight", "walk_weight"):
        assert getattr(p, f) == getattr(DEFAULTS, f), f
    assert (p.lo, p.hi) == DEFAULTS.grid_band
    sig = inspect.signature(repartition).parameters
    for f in ("radius_m", "compactness_weight", "disruption_weight", "street_weight", "path_cost",
              "street_cost", "barrier_cost", "min_polsby_popper", "max_snap_m", "n_starts"):
        assert sig[f].default == getattr(DEFAULTS, f), f


def test_plans_page_and_cli_take_the_defaults() -> None:
    from dashboard._planner import Params
    from gridpulse.commands import planner as cli
    from layers import plans

    assert plans.DEFAULT_BAND == DEFAULTS.grid_band
    assert inspect.signature(plans.check_plan).parameters["band"].default == DEFAULTS.grid_band
    params = Params()
    assert (params.lo, params.hi) == DEFAULTS.grid_band
    assert (params.radius_m, params.compactness_weight, params.disruption_weight, params.street_weight,
            params.time_limit_s) == (DEFAULTS.radius_m, DEFAULTS.compactness_weight,
                                     DEFAULTS.disruption_weight, DEFAULTS.street_weight,
                                     DEFAULTS.time_limit_s)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["repartition", "--all", "--out", "x.gpkg"])
    assert args.radius_m == DEFAULTS.radius_m
    assert cli._band(args, "en") == ("households", DEFAULTS.grid_band)
    args = parser.parse_args(["repartition", "--all", "--level", "community", "--out", "x.gpkg"])
    assert cli._band(args, "en") == ("households", DEFAULTS.community_band)


def test_a_changed_default_reaches_the_problem() -> None:
    other = dataclasses.replace(DEFAULTS, grid_band=(10.0, 20.0))
    assert isinstance(other, PlannerDefaults) and other.band("grid", balance="population") == (25.0, 50.0)
