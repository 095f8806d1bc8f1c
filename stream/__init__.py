"""Streaming engine: sources, windowing and the live pipeline."""
