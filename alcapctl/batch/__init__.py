"""Batch backends: one module per scheduler behind the interface in ``base``."""
