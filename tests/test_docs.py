"""Every link and every code block of the README and the guides in docs/ is checked, so the pages cannot rot.

Conventions the pages follow (and this module enforces):

- Every fenced block names its language in the info string, from :data:`KNOWN_INFO`.
- ``python``: a script that runs as is. Each one is executed in a subprocess with the repository root as
  working directory and on ``PYTHONPATH``, without any ``SUPABASE_*`` or ``LIVEKIT_FALLBACK_*`` variable
  (snapshot mode: no database, no network) and with a throwaway cache directory; it must exit 0.
- ``python fragment``: a visible mark for a block that cannot run on its own (it needs a LiveKit server, a
  database, or names the reader supplies). It is not run, but it must parse (top-level ``await`` allowed).
- ``bash`` / ``sh`` / ``console``: every ``livekit-fallback ...`` command (and ``python -m benchmarks.run
  ...``) must parse: ``livekit_fallback.cli.main`` with the command's arguments plus ``--help`` exits 0,
  so subcommands and option values exist, and every ``--option`` used appears in the help of the
  subcommand it is given to. Other commands in those blocks are not checked.
- ``json``: parses as JSON. ``text``, ``yaml``, ``toml``: shown as they are.
- Links: relative links resolve to files of the repository, ``#anchors`` to headings of the target page
  (GitHub's heading slugs); absolute links (and bare URLs in prose) go only to the hosts in
  :data:`ALLOWED_HOSTS`, the projects' public documentation.
- No ``TODO``, ``FIXME`` or ``TBD`` in any page; every page in docs/ is linked from the README; the
  README keeps the test command ``.ci/run`` runs verbatim; docs/benchmarks.md is the benchmark command's
  output (its fixed text, then a full run's figures).
- The README's LiveKit quickstart is ``examples/quickstart.py`` verbatim (a ``python fragment``: a worker
  script run with no arguments does not exit 0; tests/test_call.py runs the file's entrypoint instead).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from benchmarks.report import PAGE_INTRO

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEST_COMMAND = 'pip install -e ".[test]" && python -m pytest'
KNOWN_INFO = {"python", "python fragment", "bash", "sh", "console", "json", "text", "yaml", "toml"}
SHELL_INFO = {"bash", "sh", "console"}
ALLOWED_HOSTS = {
    "docs.livekit.io",
    "developer.signalwire.com",
    "supabase.com",
    "postgrest.org",
    "docs.postgrest.org",
    "docs.python.org",
    "prometheus.io",
}
SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")"}
REDIRECTS = {">", ">>", "<", ">&", "2>", "&>"}


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its info string and its text."""

    page: Path
    line: int
    info: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def split_page(path: Path) -> tuple[list[Block], list[str]]:
    """The page's fenced blocks, and its prose lines (blank where a line belongs to a block)."""
    blocks: list[Block] = []
    prose: list[str] = []
    fence: str | None = None
    start, info = 0, ""
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if fence is None:
            match = re.match(r"^(`{3,}|~{3,})(.*)$", stripped)
            if match and "`" not in match.group(2):
                fence, start, info, body = match.group(1), number, match.group(2).strip(), []
                prose.append("")
            else:
                prose.append(line)
            continue
        prose.append("")
        if stripped.startswith(fence) and not stripped[len(fence) :].strip():
            blocks.append(Block(path, start, info, "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"{path.relative_to(ROOT)}:{start}: code block never closed"
    return blocks, prose


def _without_code_spans(line: str) -> str:
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: formatting dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor the page's headings define (repeated headings get ``-1``, ``-2``, ...)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in split_page(path)[1]:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link, autolink and bare URL in the page's prose."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(split_page(path)[1], 1):
        text = _without_code_spans(line)
        for match in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text):
            found.append((number, match.group(1)))
        text = re.sub(r"!?\[[^\]]*\]\([^)]*\)", "", text)
        found += [(number, url.rstrip(".,;:")) for url in re.findall(r"https?://[^\s<>)\]]+", text)]
    return found


BLOCKS = [block for page in PAGES for block in split_page(page)[0]]


def _blocks(*infos: str) -> list[Block]:
    return [b for b in BLOCKS if b.info in infos]


def test_pages_exist() -> None:
    """The README and the guides it promises are there: configuration, resolution, platforms, operations."""
    names = {p.name for p in PAGES}
    expected = {"configuration.md", "resolution.md", "livekit.md", "signalwire.md", "snapshots.md"}
    assert {"README.md", "operations.md", "benchmarks.md"} | expected <= names


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_every_block_names_its_language(block: Block) -> None:
    """Each fenced block says what it is, so it is clear whether it runs, is a fragment, or is shown only."""
    assert block.info in KNOWN_INFO, f"{block.name}: info string {block.info!r} not one of {sorted(KNOWN_INFO)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    """Relative links point at files (and anchors at headings); absolute ones only at the projects' docs."""
    problems = []
    for number, target in links(page):
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        parts = urlsplit(target)
        if parts.scheme or target.startswith("//"):
            if parts.scheme not in ("http", "https") or parts.hostname not in ALLOWED_HOSTS:
                problems.append(f"{where}: link to a host outside the projects' documentation")
            continue
        file = page if not parts.path else (page.parent / parts.path).resolve()
        if not file.exists():
            problems.append(f"{where}: no such file")
        elif ROOT not in file.parents and file != ROOT:
            problems.append(f"{where}: outside the repository")
        elif parts.fragment and (file.suffix != ".md" or parts.fragment not in anchors(file)):
            problems.append(f"{where}: no heading with that anchor")
    assert not problems, "\n".join(problems)


def test_every_guide_is_linked_from_the_readme() -> None:
    """A newcomer reaches every page in docs/ from the README."""
    targets = {(ROOT / urlsplit(t).path).resolve() for _, t in links(ROOT / "README.md") if not urlsplit(t).scheme}
    assert [p.name for p in PAGES[1:] if p not in targets] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unfinished_markers(page: Path) -> None:
    """No page carries a marker of unfinished work."""
    text = page.read_text(encoding="utf-8")
    assert not re.findall(r"\b(TODO|FIXME|TBD|XXX)\b", text)


def test_readme_keeps_the_ci_test_command() -> None:
    """The README's test command is the one the CI script runs, verbatim."""
    assert TEST_COMMAND in (ROOT / "README.md").read_text(encoding="utf-8")
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_quickstart_is_the_example_file() -> None:
    """The README's LiveKit quickstart block is examples/quickstart.py, character for character."""
    source = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    readme = split_page(ROOT / "README.md")[0]
    quickstart = [b for b in readme if b.info == "python fragment" and "start_call" in b.code]
    assert len(quickstart) == 1, "the README has one LiveKit quickstart block"
    assert quickstart[0].code == source, "README quickstart differs from examples/quickstart.py"


def test_benchmark_page_is_generated_from_a_full_run() -> None:
    """docs/benchmarks.md is the benchmark command's output: its fixed text, then a full run's stamped figures."""
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert text.startswith(PAGE_INTRO), "docs/benchmarks.md differs from benchmarks/report.py: rerun the benchmark"
    stamp = text.removeprefix(PAGE_INTRO).splitlines()[0]
    assert re.match(r"^Benchmark run \d{4}-\d\d-\d\d \d\d:\d\d UTC, full mode, .*CPUs", stamp), stamp


@pytest.mark.parametrize("block", _blocks("json"), ids=lambda b: b.name)
def test_json_blocks_parse(block: Block) -> None:
    """A JSON example is valid JSON."""
    json.loads(block.code)


@pytest.mark.parametrize("block", _blocks("python", "python fragment"), ids=lambda b: b.name)
def test_python_blocks_parse(block: Block) -> None:
    """Every Python block, fragments included, is valid Python (fragments may use top-level await)."""
    compile(block.code, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.integration
@pytest.mark.parametrize("block", _blocks("python"), ids=lambda b: b.name)
def test_python_blocks_run(block: Block, tmp_path: Path) -> None:
    """A Python block not marked as a fragment runs to completion in snapshot mode, without network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LIVEKIT_FALLBACK_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["LIVEKIT_FALLBACK_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-c", block.code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"


def _commands(code: str) -> list[list[str]]:
    """The simple commands of a shell block: continuations joined, comments, redirections and env dropped."""
    out: list[list[str]] = []
    pending = ""
    for line in code.replace("\\\n", " ").splitlines():
        line = pending + line.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = [*lexer, ";"]
        except ValueError:  # a quoted string spans lines: read on
            pending = line + "\n"
            continue
        pending = ""
        words: list[str] = []
        skip_next = False
        for token in tokens:
            if skip_next:
                skip_next = False
            elif token in REDIRECTS:
                skip_next = True
            elif token in SEPARATORS:
                while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                    words.pop(0)
                if words:
                    out.append(words)
                words = []
            else:
                words.append(token)
    return out


def _cli_main() -> Callable[[Sequence[str]], object]:
    from livekit_fallback.cli import main

    return main


def _benchmark_main() -> Callable[[Sequence[str]], object]:
    from benchmarks.run import main

    return main


PROGRAMS: dict[tuple[str, ...], Callable[[], Callable[[Sequence[str]], object]]] = {
    ("livekit-fallback",): _cli_main,
    ("python", "-m", "benchmarks.run"): _benchmark_main,
}


def _documented_commands() -> list[tuple[str, tuple[str, ...], list[str]]]:
    found = []
    for block in _blocks(*SHELL_INFO):
        for words in _commands(block.code):
            for program in PROGRAMS:
                if tuple(words[: len(program)]) == program:
                    found.append((block.name, program, words[len(program) :]))
    return found


def _help(main: Callable[[Sequence[str]], object], argv: list[str]) -> tuple[object, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main(argv)
    return exited.value.code, out.getvalue() + err.getvalue()


COMMANDS = _documented_commands()


def test_commands_are_found() -> None:
    """The shell blocks' command extraction sees the documented commands (so the next test checks something)."""
    assert len(COMMANDS) >= 20
    used = {args[0] for _, program, args in COMMANDS if program == ("livekit-fallback",) and args}
    assert {"resolve", "status", "snapshot", "swml", "serve"} <= used


@pytest.mark.parametrize(
    ("where", "program", "args"), COMMANDS, ids=[f"{where} {' '.join(args)}" for where, _, args in COMMANDS]
)
def test_documented_commands_parse(where: str, program: tuple[str, ...], args: list[str]) -> None:
    """Each documented command's subcommands, option values and --options exist in the command line."""
    main = PROGRAMS[program]()
    code, text = _help(main, [*args, "--help"])
    assert code == 0, f"{where}: {' '.join([*program, *args])}\n{text}"
    _, top = _help(main, ["--help"])
    unknown = [
        arg.split("=", 1)[0]
        for arg in args
        if arg.startswith("--") and not re.search(rf"(?<![\w-]){re.escape(arg.split('=', 1)[0])}(?![\w-])", text + top)
    ]
    assert not unknown, f"{where}: options not in the help of {' '.join([*program, *args])}: {unknown}"
