"""Every code block of README.md and docs/*.md runs, or says why it cannot.

A fenced block's language says what it is:

- ``python``: run as a script by a fresh interpreter;
- ``bash``: one command a line (``\\`` continues a line, ``#`` starts a comment),
  each ``keras-grok ...`` or ``python ...``, optionally after ``NAME=value``
  environment assignments; run one after the other;
- ``text``: not code (a tree, an output), never run.

An HTML comment on the line(s) right above the fence changes that:

- ``<!-- not run: REASON -->``: the block is not run (an install, ``tox``, a
  cluster's address, a data set that must be downloaded); the reason is required.
- ``<!-- test with: WORDS -->``: WORDS are appended to every command of the block
  when the test runs it, so the page shows the real command and the test runs a
  tiny one. For ``keras-grok run``, bare ``KEY=VALUE`` words (``max_steps=40``):
  they come after every other override, so they win (the command line applies
  ``--set`` options before bare words, whatever their order), and the test checks
  that the run's ``config.json`` holds them.

Blocks run in a temporary directory that links the checkout's ``recipes/`` and
``benchmarks/``, so relative paths work as they do from the repository root and
what a block writes (run folders) never lands in the checkout. Python blocks are
quick and run by default; commands start whole processes and are marked ``slow``.
Both run on the JAX backend only (the backends are tested elsewhere; the pages'
code is the same on all three), which is what the pages' commands default to.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import pytest

from keras_grok.experiments.recipe import parse_value

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED = ("recipes", "benchmarks")
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*(not run|test with):\s*(.*?)\s*-->\s*$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
TWO_DEVICES = "--xla_force_host_platform_device_count=2"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
PROGRAMS = {
    "keras-grok": [sys.executable, "-m", "keras_grok.cli"],
    "python": [sys.executable],
}
ON_JAX_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the documentation's code runs on JAX only (the backends are tested "
    "by the rest of the suite)",
)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page, with the markers right above it."""

    page: Path
    line: int
    language: str
    code: str
    not_run: str | None = None
    test_with: str | None = None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def page_blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order; ValueError for an unclosed fence."""
    lines = page.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((k for k in range(i + 1, len(lines)) if lines[k] == "```"), None)
        if end is None:
            raise ValueError(f"{page.name}:{i + 1}: the fence is never closed")
        markers, above = {}, i - 1
        while above >= 0 and (marker := MARKER.match(lines[above].strip())):
            markers[marker.group(1)] = marker.group(2)
            above -= 1
        blocks.append(
            Block(
                page,
                i + 1,
                fence.group(1),
                "\n".join(lines[i + 1 : end]) + "\n",
                markers.get("not run"),
                markers.get("test with"),
            )
        )
        i = end + 1
    return blocks


def commands(code: str) -> list[tuple[dict, list[str]]]:
    """``(environment, argv)`` of each command of a bash block."""
    joined = code.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        env = {}
        while words and ASSIGNMENT.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        found.append((env, words))
    return found


def problems(block: Block) -> list[str]:
    """Why ``block`` could be neither run nor skipped (empty if it is fine)."""
    if block.not_run is not None:
        if not block.not_run:
            return ["<!-- not run: --> needs a reason"]
        if block.test_with is not None:
            return ["a block is either not run or tested with words, not both"]
        return []
    if block.language == "text":
        return []
    if block.language == "python":
        if block.test_with is not None:
            return ["<!-- test with: --> applies to bash blocks only"]
        return []
    if block.language != "bash":
        return [
            f"language {block.language!r}: use python, bash or text, or mark the "
            "block <!-- not run: reason -->"
        ]
    found = commands(block.code)
    if not found:
        return ["a bash block with no command"]
    return [
        f"{' '.join(argv[:2])!r} is not a keras-grok or python command: mark the "
        "block <!-- not run: reason -->"
        for _, argv in found
        if not argv or argv[0] not in PROGRAMS
    ]


ALL_BLOCKS = [block for page in PAGES for block in page_blocks(page)]


def _runnable(language: str) -> list[Block]:
    """The blocks of ``language`` to run, one per distinct block (a command the
    README and a docs page both show is run once)."""
    seen, chosen = set(), []
    for block in ALL_BLOCKS:
        key = (block.code, block.test_with)
        if block.language == language and block.not_run is None and key not in seen:
            seen.add(key)
            chosen.append(block)
    return chosen


PYTHON_BLOCKS = _runnable("python")
BASH_BLOCKS = _runnable("bash")


@pytest.fixture
def workdir(tmp_path) -> Path:
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


def _environment(workdir: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="jax",
        KERAS_HOME=str(workdir / "keras_home"),
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    env.update(extra or {})
    return env


def _two_host_devices(env: dict) -> dict:
    """``env`` with JAX's CPU split into two devices (``devices=all``, ``=2``)."""
    flags = env.get("XLA_FLAGS", "")
    return {**env, "XLA_FLAGS": f"{flags} {TWO_DEVICES}".strip()}


def _check_settings(argv: list[str], words: list[str], workdir: Path, what: str):
    """The run a ``keras-grok run`` command wrote has the test's settings."""
    if argv[:2] != ["keras-grok", "run"]:
        return
    options = dict(zip(argv, argv[1:]))
    backend = options.get("--backend", "jax")
    out = options.get("--out") or f"runs/{Path(argv[2]).stem}-{backend}"
    config = json.loads((workdir / out / "config.json").read_text())["config"]
    for word in words:
        key, _, text = word.partition("=")
        wanted = json.loads(json.dumps(parse_value(key, text, config[key])))
        assert config[key] == wanted, f"{what}: {key}={config[key]!r}, not {text}"


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    output = (result.stdout or "") + (result.stderr or "")
    assert result.returncode == 0, (
        f"{what} exited {result.returncode}:\n{output[-4000:]}"
    )


def test_the_reader_sees_markers_commands_and_unrunnable_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- test with: --set max_steps=3 -->\n```bash\n"
        "# a comment\nKERAS_BACKEND=jax keras-grok run r.py \\\n    --set a=1\n```\n"
        "<!-- not run: installs packages -->\n```bash\npip install x\n```\n"
        "```bash\npip install x\n```\n```\nno language\n```\n"
    )
    tested, skipped, unmarked, bare = page_blocks(page)
    assert tested.test_with == "--set max_steps=3" and tested.line == 2
    assert commands(tested.code) == [
        ({"KERAS_BACKEND": "jax"}, ["keras-grok", "run", "r.py", "--set", "a=1"])
    ]
    assert skipped.not_run == "installs packages" and problems(skipped) == []
    assert "not a keras-grok or python command" in problems(unmarked)[0]
    assert "use python, bash or text" in problems(bare)[0]


def test_the_pages_have_code_blocks():
    assert len(ALL_BLOCKS) >= 10
    assert any(block.not_run for block in ALL_BLOCKS)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_points_to_a_file(page):
    targets = [t for t in LINK.findall(page.read_text()) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert missing == [], f"{page.name} links to missing files"


def test_the_layout_page_names_every_module():
    layout = (ROOT / "docs" / "layout.md").read_text()
    modules = sorted((ROOT / "keras_grok").rglob("*.py"))
    missing = [
        str(path.relative_to(ROOT))
        for path in modules
        if path.name != "__init__.py" and not re.search(rf"\b{path.name}\b", layout)
    ]
    assert missing == [], "docs/layout.md does not name these modules"


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.name for b in ALL_BLOCKS])
def test_every_block_is_run_or_says_why_not(block):
    assert problems(block) == [], block.name


@ON_JAX_ONLY
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.name for b in PYTHON_BLOCKS])
def test_python_block_runs(block, workdir):
    script = workdir / "block.py"
    script.write_text(block.code)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=workdir,
        env=_environment(workdir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    _check(result, block.name)


@pytest.mark.slow
@ON_JAX_ONLY
@pytest.mark.parametrize("block", BASH_BLOCKS, ids=[b.name for b in BASH_BLOCKS])
def test_command_block_runs(block, workdir):
    extra = shlex.split(block.test_with or "")
    for env, argv in commands(block.code):
        result = subprocess.run(
            [*PROGRAMS[argv[0]], *argv[1:], *extra],
            cwd=workdir,
            env=_two_host_devices(_environment(workdir, env)),
            capture_output=True,
            text=True,
            timeout=600,
        )
        what = f"{block.name}: {shlex.join(argv)}"
        _check(result, what)
        _check_settings(argv, extra, workdir, what)
