"""GridPulse data: the synthetic demo district generator and the small files it needs."""
