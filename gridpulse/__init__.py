"""GridPulse: geospatial grid management (网格化管理) for Chinese cities."""

__version__ = "0.1.0"
