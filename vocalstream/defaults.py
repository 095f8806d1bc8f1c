"""Defaults a user sees in --help and in the Python API, importable without the model stack."""

FILE_HOP_SECONDS = 1.0  # vocalstream file: a window every second makes a timeline to the second
LISTEN_HOP_SECONDS = 1.0
