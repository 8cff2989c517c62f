"""alcapctl: run AlCap data-processing productions against a shared production database."""

__version__ = "0.3.0"
