"""The distribution: wheel contents, the console script, and no bare top-level modules."""

import subprocess
import sys
import zipfile
from configparser import ConfigParser

import pytest
from conftest import REPO

import vocalstream

PRODUCT_FOLDERS = {"stream", "models", "export", "inference", "train", "catalog", "service"}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = out.glob("vocalstream-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_wheel_has_a_single_top_level_package(wheel_files):
    top = {name.split("/")[0] for name in wheel_files}
    assert top == {"vocalstream", f"vocalstream-{vocalstream.__version__}.dist-info"}


def test_wheel_carries_every_module_of_the_product_folders(wheel_files):
    expected = set()
    for folder in PRODUCT_FOLDERS | {"vocalstream"}:
        for source in [*(REPO / folder).rglob("*.py"), *(REPO / folder).rglob("*.toml")]:
            relative = source.relative_to(REPO / folder).as_posix()
            prefix = "vocalstream" if folder == "vocalstream" else f"vocalstream/{folder}"
            expected.add(f"{prefix}/{relative}")
    missing = expected - set(wheel_files)
    assert not missing, f"setup.cfg forgets these (list their packages): {sorted(missing)}"


def test_wheel_carries_the_default_model(wheel_files):
    bundled = {
        f"vocalstream/inference/default/{p.name}" for p in (REPO / "inference/default").iterdir()
    }
    assert "vocalstream/inference/default/manifest.json" in bundled
    assert bundled <= set(wheel_files)


def test_setup_cfg_maps_each_product_folder_under_vocalstream():
    config = ConfigParser()
    config.read(REPO / "setup.cfg")
    mapping = dict(
        line.split(" = ") for line in config["options"]["package_dir"].strip().splitlines()
    )
    assert {mapping[f"vocalstream.{folder}"] for folder in PRODUCT_FOLDERS} == PRODUCT_FOLDERS


def test_installed_package_imports_only_under_vocalstream(tmp_path):
    # A neutral working directory, so the checkout's own folders are not on sys.path.
    code = (
        "import importlib.util, vocalstream.models, vocalstream.stream, vocalstream.export, "
        "vocalstream.inference, vocalstream.train\n"
        "bare = [m for m in ('models', 'stream', 'export', 'inference', 'train')\n"
        "        if importlib.util.find_spec(m)]\n"
        "assert not bare, bare\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)


def test_console_script_version_and_help(tmp_path):
    bin_dir = f"{sys.prefix}/bin"
    version = subprocess.run(
        [f"{bin_dir}/vocalstream", "--version"], cwd=tmp_path, capture_output=True, text=True
    )
    assert version.returncode == 0
    assert version.stdout.strip() == f"vocalstream, version {vocalstream.__version__}"
    usage = subprocess.run(
        [f"{bin_dir}/vocalstream", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert usage.returncode == 0 and "Usage: vocalstream" in usage.stdout


def test_every_imported_package_is_declared():
    """A dependency installed by hand on a developer's machine must not hide a missing
    install_requires entry (sounddevice once did)."""
    import ast
    import importlib.metadata
    import re

    config = ConfigParser()
    config.read(REPO / "setup.cfg")

    def canonical(name: str) -> str:  # PEP 503: prometheus_client and prometheus-client match
        return re.sub(r"[-_.]+", "-", name).lower()

    def names(requirements: str) -> set[str]:
        lines = requirements.strip().splitlines()
        return {canonical(re.split(r"[<>=!;\[ ]", line.strip())[0]) for line in lines}

    declared = names(config["options"]["install_requires"])
    # The corpus builder alone may use the `corpus` extra.
    corpus = names(config["options.extras_require"]["corpus"])
    extra = {REPO / "train" / name: corpus for name in ("corpus.py", "resing.py")}
    # Ray runs batches only with --ray, from the `ray` extra.
    extra[REPO / "catalog" / "execute.py"] = names(config["options.extras_require"]["ray"])
    distributions = importlib.metadata.packages_distributions()
    undeclared = set()
    for folder in PRODUCT_FOLDERS | {"vocalstream"}:
        for source in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top == "vocalstream":
                        continue
                    owners = {canonical(d) for d in distributions.get(top, [top])}
                    if not owners & (declared | extra.get(source, set())):
                        undeclared.add(f"{top} ({source.relative_to(REPO)})")
    assert not undeclared, f"imported but not in install_requires: {sorted(undeclared)}"
