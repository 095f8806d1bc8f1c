"""The exception types a user sees: the CLI prints the message as one line and exits non-zero."""


class VocalstreamError(Exception):
    """Base class for every error vocalstream reports to its user."""


class AudioError(VocalstreamError):
    """Audio could not be read, or what was read is not usable audio."""


class ModelError(VocalstreamError):
    """A model's files are missing, damaged, or do not match what vocalstream expects."""


class DataError(VocalstreamError):
    """A training data set is malformed: labels, manifests, missing or unreadable files, splits."""
