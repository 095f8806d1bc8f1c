from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared(relative: str) -> Path:
    """A real recording from ../shared/data, which CI always places beside the checkout."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.fail(f"missing real test audio {path}: ../shared must sit beside the checkout")
    return path


SONG = "librosa-data/Karissa_Hobbs_-_Lets_Go_Fishin.ogg"  # 44.1 kHz stereo, female lead
SPEECH = "librosa-data/198-209-0000.ogg"  # LibriSpeech, female reader
ORCHESTRA = (
    "librosa-data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"
)


@pytest.fixture(scope="session")
def separator_cache(tmp_path_factory):
    """A private model cache holding the separator ONNX, built once per test session exactly as
    a user's first run builds it."""
    import os

    from vocalstream.export.separator import cached_separator_path

    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("VOCALSTREAM_CACHE")
    os.environ["VOCALSTREAM_CACHE"] = str(cache)
    try:
        path = cached_separator_path(log=lambda message: None)
        yield path
    finally:
        if previous is None:
            del os.environ["VOCALSTREAM_CACHE"]
        else:
            os.environ["VOCALSTREAM_CACHE"] = previous
