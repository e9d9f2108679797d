"""The version of the mmlatent core (also ``mmlatent.__version__``; pyproject.toml holds the same)."""

__version__ = "0.1.0"
