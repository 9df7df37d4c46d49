"""The OSS automation and assurance daemon."""

__version__ = "0.1.0"
