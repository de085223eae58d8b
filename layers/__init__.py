"""GridPulse layers: schemas, readers and writers, validation, and the store."""
