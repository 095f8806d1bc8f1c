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
    """A private model cache holding the separator graphs of both variants, built once per test
    session exactly as a user's first run builds them. Yields the default variant's path."""
    import os

    from vocalstream.inference.separator import cached_separator_path

    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("VOCALSTREAM_CACHE")
    os.environ["VOCALSTREAM_CACHE"] = str(cache)
    try:
        cached_separator_path("2stems")
        yield cached_separator_path()
    finally:
        if previous is None:
            del os.environ["VOCALSTREAM_CACHE"]
        else:
            os.environ["VOCALSTREAM_CACHE"] = previous


@pytest.fixture(scope="session")
def cache_env(separator_cache) -> dict:
    """The environment of a vocalstream process that uses the session's model cache."""
    import os

    return {**os.environ, "VOCALSTREAM_CACHE": str(separator_cache.parent)}


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory, separator_cache):
    """A real model bundle: CNN4 trained for one epoch on the tiny real-audio corpus, exported
    with vocalstream's own commands (its separator comes from the session's cache)."""
    import tiny_corpus

    from vocalstream.export.bundle import export_bundle
    from vocalstream.train import data
    from vocalstream.train.recipe import load_recipe
    from vocalstream.train.run import train_run

    folder = tmp_path_factory.mktemp("trained")
    examples = data.read_seed_folder(tiny_corpus.build(folder / "corpus"))
    train_run(
        load_recipe("cnn4", {"epochs": 1}),
        examples,
        folder / "run",
        {"epochs": 1},
        log=lambda message: None,
        progress=False,
    )
    export_bundle([folder / "run"], folder / "bundle", include_separator=False)
    return folder / "bundle"


def start_pulseaudio(runtime) -> dict:
    """A PulseAudio server in `runtime` whose default source is the monitor of the null sink
    vmic (../shared/notes/virtual-mic.md). Returns the environment its clients need."""
    import os
    import shutil
    import subprocess
    import time

    if shutil.which("pulseaudio") is None:
        pytest.fail("pulseaudio is not installed: run the README's test command, which installs it")
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    subprocess.run(
        [
            "pulseaudio",
            "-D",
            "-n",
            "--exit-idle-time=-1",
            "--disallow-exit",
            f"--log-target=file:{runtime}/pulse.log",
            "--load=module-native-protocol-unix auth-anonymous=1",
            "--load=module-null-sink sink_name=vmic rate=44100 channels=2 format=float32le "
            "norewinds=1",
        ],
        env=env,
        check=True,
    )
    for _ in range(100):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-sink", "vmic"], env=env, check=True)
    subprocess.run(["pactl", "set-default-source", "vmic.monitor"], env=env, check=True)
    return env


@pytest.fixture
def virtual_microphone(tmp_path):
    """A real capture device: a PulseAudio null sink whose monitor is the default source.
    Yields the environment a recording process needs."""
    import subprocess

    env = start_pulseaudio(tmp_path / "pulse-runtime")
    try:
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True)
