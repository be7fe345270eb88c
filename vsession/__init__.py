"""vsession: a self-hostable video session server for small therapy practices."""

__version__ = "0.1.0"
