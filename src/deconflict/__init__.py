"""deconflict: deconfliction between parties that share an operating area."""

__version__ = "0.1.0"
