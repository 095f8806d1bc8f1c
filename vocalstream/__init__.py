"""vocalstream: tell whether audio holds no voice, one male, one female or several voices.

    import vocalstream
    model = vocalstream.load_model()
    print(model.analyse("song.mp3").segments)

The names below load on first use, so `import vocalstream` (and the CLI's --help) stays quick.
"""

import os as _os

from vocalstream.version import __version__ as __version__

# Run from a source checkout (the current folder on sys.path), this folder is found before the
# installed package, and the product's other folders (inference/, stream/, ...) sit beside it, as
# setup.cfg maps them under vocalstream.*: look for them there too.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "setup.cfg")) and _checkout not in __path__:
    __path__.append(_checkout)

_API = {"load_model", "Model", "Analysis"}
_TIMELINE = {"Segment", "Smoothing"}
__all__ = ["LABELS", "Analysis", "Model", "Result", "Segment", "Smoothing", "load_model"]


def __getattr__(name: str):
    if name in _API:
        from vocalstream import api

        return getattr(api, name)
    if name in _TIMELINE:
        from vocalstream.stream import timeline

        return getattr(timeline, name)
    if name == "Result":
        from vocalstream.stream.pipeline import Result

        return Result
    if name == "LABELS":
        from vocalstream.models.labels import LABELS

        return LABELS
    raise AttributeError(f"module 'vocalstream' has no attribute {name!r}")
