"""The README's two fresh-machine commands stay true."""

import os
import re
import subprocess
import sys

from conftest import REPO

README = (REPO / "README.md").read_text()
PROBABILITY_ACROSS_PROCESSORS = 0.002  # float kernels of other CPUs, rounded to four decimals


def command(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.+?)\n```", README, re.DOTALL)
    assert match, f"README.md lacks the {marker} block"
    return match.group(1)


def test_exactly_two_commands_for_a_fresh_machine():
    assert README.count("```bash") == 2
    for marker in ("main-command", "test-command"):
        assert "python3 -m venv .venv && . .venv/bin/activate && pip install" in command(marker)
    assert "apt-get install" in command("test-command")  # the virtual microphone's packages


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and "README.md" in ci


def test_main_command_works_after_install(tmp_path, separator_cache):
    """The part after the install runs as written, from a copy of the checkout's layout."""
    job = command("main-command").split("pip install -c constraints.txt . && ")[1]
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "example.mp3").write_bytes((REPO / "samples/example.mp3").read_bytes())
    env = {**os.environ, "VOCALSTREAM_CACHE": str(separator_cache.parent)}
    env["PATH"] = f"{sys.prefix}/bin:{env['PATH']}"
    run = subprocess.run(job, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    header, *rows = [line.split(",") for line in run.stdout.splitlines()]
    assert header == ["file", "start", "end", "label", "label_id", "probability"]
    assert rows and float(rows[0][1]) == 0.0 and float(rows[-1][2]) > 10
    for (_, _, end, *_), (_, start, *_) in zip(rows, rows[1:], strict=False):
        assert end == start  # segments tile the file
    assert {row[3] for row in rows} <= {"no_voice", "male", "female", "several"}
    printed = re.search(r"<!-- main-command -->.+?```text\n(.+?)```", README, re.DOTALL)
    assert printed, "the README shows no timeline"
    shown = [line.split(",") for line in printed.group(1).splitlines()]
    assert [row[:-1] for row in [header, *rows]] == [row[:-1] for row in shown]
    for row, shown_row in zip(rows, shown[1:], strict=True):
        assert abs(float(row[-1]) - float(shown_row[-1])) <= PROBABILITY_ACROSS_PROCESSORS


def test_python_api_example_runs(separator_cache):
    """The README's Python example, verbatim, on the bundled model and sample."""
    match = re.search(r"## Python API\n\n```python\n(.+?)\n```", README, re.DOTALL)
    assert match, "README.md lacks the Python API example"
    assert len(match.group(1).splitlines()) <= 6
    env = {**os.environ, "VOCALSTREAM_CACHE": str(separator_cache.parent)}
    run = subprocess.run(
        [sys.executable, "-c", match.group(1)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines()]
    assert rows and float(rows[0][0]) == 0.0 and float(rows[-1][1]) > 10
    assert {row[2] for row in rows} <= {"no_voice", "male", "female", "several"}
