"""vocalstream: tell whether audio holds no voice, one male, one female or several voices."""

__version__ = "0.1.0"
