"""The package version, which generated files name in their header."""

__version__ = "0.1.0"
