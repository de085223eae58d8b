"""One typed, validated configuration object, read from ``GRIDPULSE_*`` environment variables.

Pages and commands read :func:`settings`; algorithms take explicit arguments.
Unknown ``GRIDPULSE_*`` variables raise, so a typo does not silently do nothing.

Examples
--------
>>> s = Settings.from_env({"GRIDPULSE_BASEMAP": "none", "GRIDPULSE_OFFLINE": "1"})
>>> s.basemap, s.offline
('none', True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from platformdirs import user_data_dir

from layers.errors import ConfigError

BASEMAPS: tuple[str, ...] = ("osm", "tianditu", "amap", "xyz", "none")


def default_store() -> str:
    """Default store: ``gridpulse.gpkg`` under the user's data directory."""
    return str(Path(user_data_dir("gridpulse", appauthor=False)) / "gridpulse.gpkg")


@dataclass(frozen=True)
class Settings:
    """GridPulse settings.

    Parameters
    ----------
    store
        ``GRIDPULSE_STORE``: a GeoPackage path or a ``postgresql://`` URL.
    lang
        ``GRIDPULSE_LANG``: ``zh`` or ``en`` (empty: from the locale, zh when unset).
    basemap
        ``GRIDPULSE_BASEMAP``: ``osm``, ``tianditu``, ``amap``, ``xyz`` or ``none``.
    tianditu_key
        ``GRIDPULSE_TIANDITU_KEY``: the Tianditu (天地图) token, needed for that basemap.
    tiles_url
        ``GRIDPULSE_TILES_URL``: a self-hosted XYZ URL template (``.../{z}/{x}/{y}.png``).
    offline
        ``GRIDPULSE_OFFLINE``: serve Leaflet assets locally and request nothing beyond
        the GridPulse server (intranet / 政务外网 mode).
    demo_preset
        ``GRIDPULSE_DEMO_PRESET``: demo district preset loaded into an empty store.
    wall_refresh_s
        ``GRIDPULSE_WALL_REFRESH_S``: wall-display refresh interval in seconds.
    max_upload_mb
        ``GRIDPULSE_MAX_UPLOAD_MB``: the largest file the readers, the CLI and the Data page
        accept, in MB (a zip may expand to twice that; see :mod:`layers._io_guard`).
    max_rows
        ``GRIDPULSE_MAX_ROWS``: the most rows (or features) one file may hold.
    """

    store: str = ""
    lang: str = ""
    basemap: str = "osm"
    tianditu_key: str = ""
    tiles_url: str = ""
    offline: bool = False
    demo_preset: str = "full"
    wall_refresh_s: int = 30
    max_upload_mb: int = 200
    max_rows: int = 1_000_000

    def __post_init__(self) -> None:
        if self.basemap not in BASEMAPS:
            raise ConfigError("engines.config.bad_basemap", value=repr(self.basemap),
                              known=", ".join(BASEMAPS))
        if self.basemap == "xyz" and not self.tiles_url:
            raise ConfigError("engines.config.needs_tiles_url")
        if self.basemap == "tianditu" and not self.tianditu_key:
            raise ConfigError("engines.config.needs_tianditu_key")
        if self.lang not in ("", "zh", "en"):
            raise ConfigError("engines.config.bad_lang", value=repr(self.lang))
        if self.demo_preset not in ("small", "medium", "full"):
            raise ConfigError("engines.config.bad_preset", value=repr(self.demo_preset))
        if self.wall_refresh_s < 5:
            raise ConfigError("engines.config.wall_refresh")
        if self.max_upload_mb < 1 or self.max_rows < 1:
            raise ConfigError("engines.config.limits")

    @property
    def store_url(self) -> str:
        """The store location, with the default filled in."""
        return self.store or default_store()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``GRIDPULSE_*`` variables; unknown ones raise :class:`ConfigError`."""
        env = os.environ if env is None else env
        known = {f.name: f for f in fields(cls)}
        # Variables GridPulse reads elsewhere (tests, CI), not settings of the app.
        ignored = {"GRIDPULSE_TEST_PG"}
        kwargs: dict[str, object] = {}
        for var, raw in env.items():
            if not var.startswith("GRIDPULSE_") or var in ignored:
                continue
            name = var.removeprefix("GRIDPULSE_").lower()
            if name not in known:
                raise ConfigError("engines.config.unknown_setting", var=var,
                                  known=", ".join("GRIDPULSE_" + k.upper() for k in known))
            ftype = known[name].type
            if ftype in (bool, "bool"):
                kwargs[name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif ftype in (int, "int"):
                try:
                    kwargs[name] = int(raw)
                except ValueError as exc:
                    raise ConfigError("engines.config.not_a_number", var=var, value=repr(raw)) from exc
            else:
                kwargs[name] = raw.strip()
        return cls(**kwargs)  # type: ignore[arg-type]


def settings() -> Settings:
    """The settings in force (read from the environment each call; cheap)."""
    return Settings.from_env()
