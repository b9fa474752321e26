"""The service's version, kept apart so packaging can read it without importing Flask."""

__version__ = "0.6.0"
