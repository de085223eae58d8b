"""GridPulse geo: pure algorithms on arrays and GeoDataFrames (no I/O, no UI)."""
