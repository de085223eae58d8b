from __future__ import annotations

import pytest

from layers.config import Settings
from layers.errors import ConfigError


def test_defaults_and_types() -> None:
    s = Settings.from_env({"GRIDPULSE_OFFLINE": "true", "GRIDPULSE_WALL_REFRESH_S": "15"})
    assert s.offline is True and s.wall_refresh_s == 15 and s.basemap == "osm"
    assert s.store_url.endswith("gridpulse.gpkg")


@pytest.mark.parametrize(
    "env",
    [
        {"GRIDPULSE_STOER": "x.gpkg"},  # typo: unknown keys raise
        {"GRIDPULSE_BASEMAP": "google"},
        {"GRIDPULSE_BASEMAP": "xyz"},  # needs a URL
        {"GRIDPULSE_BASEMAP": "tianditu"},  # needs a key
        {"GRIDPULSE_WALL_REFRESH_S": "soon"},
        {"GRIDPULSE_LANG": "fr"},
    ],
)
def test_bad_settings_raise_with_the_variable_named(env) -> None:
    with pytest.raises(ConfigError, match="GRIDPULSE_"):
        Settings.from_env(env)
