"""GridPulse dashboard: Streamlit screens over the layers and geo packages."""
