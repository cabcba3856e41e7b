"""``livekit-fallback snapshot``: pull, diff, check, graph and seed against the real test database."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from livekit_fallback import Resolver, SnapshotSource, Source, SupabaseSource
from livekit_fallback.cli import main
from livekit_fallback.config.graph import END_NODE, START_NODE
from livekit_fallback.config.sources.snapshot import default_snapshot_dir, load_snapshot
from livekit_fallback.snapshots.write import WIDTH, render_snapshot

from .conftest import DB_MARKER, DB_MODELS, TEST_KEY, VERTICAL, SeededDatabase, database_copy, shipped_snapshot
from .support.postgrest import Status
from .support.seed import delete_node, set_active_model, set_backups, set_node_content, set_theme

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHIPPED = default_snapshot_dir() / f"{VERTICAL}.toml"
DEAD_URL = "http://127.0.0.1:1"
NODES = list(shipped_snapshot()["nodes"])


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command in-process; returns exit code, stdout, stderr (root log handlers restored)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    capsys.readouterr()
    try:
        code = main(list(args))
    finally:
        for handler in root.handlers[len(handlers) :]:
            root.removeHandler(handler)
        root.setLevel(level)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and TEST_KEY not in out + err
    return code, out, err


@pytest.fixture
def db_env(seeded: SeededDatabase, clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SeededDatabase:
    """Environment pointing the command at the seeded database through the stand-in."""
    monkeypatch.setenv("SUPABASE_URL", seeded.url)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", seeded.key)
    monkeypatch.setenv("LIVEKIT_FALLBACK_CACHE_DIR", str(tmp_path / "cache"))
    return seeded


@pytest.fixture
def dead_env(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Environment pointing at a port where nothing listens."""
    monkeypatch.setenv("SUPABASE_URL", DEAD_URL)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", TEST_KEY)
    yield


def _snapshot_copy(tmp_path: Path, edit: dict[str, tuple[str, str]] | None = None) -> Path:
    """Copy the shipped snapshot into ``tmp_path/snaps``, applying exact text replacements."""
    directory = tmp_path / "snaps"
    directory.mkdir(exist_ok=True)
    text = SHIPPED.read_text(encoding="utf-8")
    for old, new in (edit or {}).values():
        assert old in text
        text = text.replace(old, new, 1)
    (directory / f"{VERTICAL}.toml").write_text(text, encoding="utf-8")
    return directory


def _writes(seeded: SeededDatabase) -> list[str]:
    return [f"{r.method} {r.path}" for r in seeded.standin.requests if r.method not in ("GET", "HEAD")]


# -- pull / check / diff -------------------------------------------------------------------------


def test_pull_then_check_then_diff_is_clean(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """A pulled snapshot holds the database's values, passes check, and diffs clean against the database."""
    out = tmp_path / "pulled"
    before = datetime.now(timezone.utc).replace(microsecond=0)
    code, stdout, _ = run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(out))
    assert code == 0 and "wrote" in stdout
    path = out / f"{VERTICAL}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert list(data["nodes"]) == NODES
    assert all(DB_MARKER in node["instructions"] for node in data["nodes"].values())
    assert data["theme"]["identity"].endswith(DB_MARKER)
    assert data["models"] == DB_MODELS
    assert data["source"] == "supabase 127.0.0.1 (pulled by livekit-fallback 0.1.0)"
    taken = datetime.fromisoformat(data["taken_at"].replace("Z", "+00:00"))
    assert before <= taken <= datetime.now(timezone.utc) and data["taken_at"].endswith("Z")
    assert path.stat().st_mode & 0o777 == 0o644 and not list(out.glob(".*.tmp"))

    assert run_cli(capsys, "snapshot", "check", str(out))[0] == 0
    code, stdout, _ = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL, "--snapshot-dir", str(out))
    assert code == 0, stdout
    assert "no drift: all 16 components are equal" in stdout


def test_second_pull_leaves_the_file_byte_identical(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """Pulling an unchanged database again writes nothing; a forced restamp changes only taken_at."""
    args = ("snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))
    assert run_cli(capsys, *args)[0] == 0
    path = tmp_path / f"{VERTICAL}.toml"
    first = path.read_bytes()
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 0 and "up to date" in stdout and path.read_bytes() == first
    data = tomllib.loads(first.decode())
    earlier = first.decode().replace(data["taken_at"], "2020-01-01T00:00:00Z")
    path.write_text(earlier, encoding="utf-8")
    assert run_cli(capsys, *args, "--restamp")[0] == 0
    changed = [(a, b) for a, b in zip(earlier.splitlines(), path.read_text().splitlines(), strict=False) if a != b]
    assert len(earlier.splitlines()) == len(path.read_text().splitlines())
    assert [a for a, _ in changed] == ['taken_at = "2020-01-01T00:00:00Z"']


def test_pull_keeps_prose_readable(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """Prompt text is written as wrapped multi-line strings in the shipped file's layout."""
    assert run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))[0] == 0
    text = (tmp_path / f"{VERTICAL}.toml").read_text(encoding="utf-8")
    assert text.startswith(f"# livekit-fallback snapshot: {VERTICAL}\n")
    headers = [line for line in text.splitlines() if line.startswith("[")]
    assert headers == ["[theme]", *(f"[nodes.{n}]" for n in NODES), "[models.livekit]", "[models.signalwire]"]
    assert 'identity = """\n' in text and 'instructions = """\n' in text
    prose = [line for line in text.splitlines() if line.endswith(" \\")]
    assert len(prose) > 100 and max(len(line) for line in prose) <= WIDTH
    assert "\\n" not in text  # real newlines, not escapes


def test_changing_one_node_is_reported_as_exactly_that_drift(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """After a pull, editing one node in the database makes diff exit 1 naming only that node, with the text change."""
    assert run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))[0] == 0
    content = dict(database_copy()["nodes"]["verify"])
    content["instructions"] = content["instructions"].replace("Explain briefly", "Explain very briefly")
    set_node_content(db_env.dsn, VERTICAL, "verify", {**content, "functions": content["tools"]})
    code, stdout, _ = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL, "--snapshot-dir", str(tmp_path))
    assert code == 1
    assert re.findall(r"^~ (\S+):", stdout, re.M) == ["nodes.verify"]
    assert "DRIFT: 1 of 16 components differ: nodes.verify" in stdout
    assert re.search(r"^-Explain briefly", stdout, re.M) and re.search(r"^\+Explain very briefly", stdout, re.M)


def test_model_drift_shows_both_values(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """A changed active model (global table) is one line naming the platform, kind and both values."""
    assert run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))[0] == 0
    set_active_model(db_env.dsn, "signalwire_available_llm_models", "gpt-4o")
    code, stdout, _ = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL, "--snapshot-dir", str(tmp_path))
    assert code == 1
    assert "~ models.signalwire.llm: changed: snapshot 'gpt-4.1-nano' -> database 'gpt-4o'" in stdout
    assert "DRIFT: 1 of 16" in stdout


def test_diff_against_the_shipped_snapshot_sees_every_difference(db_env: SeededDatabase, capsys) -> None:
    """The seeded database differs from the shipped snapshot in every component, and diff says so."""
    code, stdout, _ = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL)
    assert code == 1
    assert "DRIFT: 16 of 16 components differ" in stdout
    assert "+Equity Conversion Mortgage" not in stdout  # unchanged lines are context, not changes
    assert re.search(rf"^\+.*{re.escape(DB_MARKER)}", stdout, re.M)


def test_missing_and_extra_components_are_drift(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """A node deleted from the database and one only in the database are both reported."""
    assert run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))[0] == 0
    delete_node(db_env.dsn, VERTICAL, "book")
    extra = {"role": "Survey.", "instructions": "Ask one question.", "valid_contexts": ["goodbye"], "tools": []}
    set_node_content(db_env.dsn, VERTICAL, "survey", extra)
    code, stdout, _ = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL, "--snapshot-dir", str(tmp_path))
    assert code == 1
    assert "~ nodes.book: only in snapshot (database: " not in stdout  # a deleted node has no row problem
    assert "~ nodes.book: only in snapshot" in stdout and "~ nodes.survey: only in database" in stdout
    assert "DRIFT: 2 of 17" in stdout


def test_signalwire_functions_that_differ_from_tools_survive_a_pull(
    db_env: SeededDatabase, capsys, tmp_path: Path
) -> None:
    """A node whose SignalWire functions differ from its LiveKit tools keeps both; diff is clean, each has its own."""
    content = dict(database_copy()["nodes"]["greet"])
    content.update(tools=["mark_wrong_person"], functions=["mark_wrong_person", "transfer_call"])
    content.pop("step_criteria_sw")
    content["step_criteria"] = "Legacy wording."
    set_node_content(db_env.dsn, VERTICAL, "greet", content)
    assert run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))[0] == 0
    greet = tomllib.loads((tmp_path / f"{VERTICAL}.toml").read_text(encoding="utf-8"))["nodes"]["greet"]
    assert greet["tools"] == ["mark_wrong_person"] and greet["functions"] == ["mark_wrong_person", "transfer_call"]
    assert greet["step_criteria_sw"] == "Legacy wording." and "step_criteria" not in greet
    assert run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL, "--snapshot-dir", str(tmp_path))[0] == 0
    graphs = {}
    for platform in ("livekit", "signalwire"):
        code, stdout, _ = run_cli(
            capsys, "snapshot", "graph", "--vertical", VERTICAL, "--snapshot-dir", str(tmp_path), "--platform", platform
        )
        graphs[platform] = parse_mermaid(stdout)[0]["n_greet"]
    assert "transfer_call" in graphs["signalwire"] and "transfer_call" not in graphs["livekit"]


def test_diff_exits_4_when_the_database_is_down(dead_env: None, capsys) -> None:
    """An unreachable database is exit 4 (failed) with one line on stderr, not a drift verdict."""
    code, stdout, stderr = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL)
    assert code == 4 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and "database unreachable" in stderr and "ConnectError" in stderr


@pytest.mark.parametrize(
    "fault",
    [
        Status.json(500, {"code": "XX000", "message": "internal error", "details": None, "hint": None}),
        Status(200, b"<html>captive portal</html>", "text/html"),
        Status.json(401, {"message": "Invalid API key", "hint": "Double check your key"}),
    ],
    ids=["http_500", "non_json_200", "http_401"],
)
def test_diff_exits_4_when_the_database_answers_badly(db_env: SeededDatabase, capsys, fault: Status) -> None:
    """An HTTP error or a body that is not rows means no comparison was made: exit 4."""
    db_env.standin.set_fault("active_node_prompts", fault)
    code, stdout, stderr = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL)
    assert code == 4 and "DRIFT" not in stdout and "active_node_prompts" in stderr


def test_diff_exits_4_for_an_unreadable_snapshot(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """A snapshot that is not valid TOML cannot be compared: exit 4 naming the file."""
    (tmp_path / f"{VERTICAL}.toml").write_text("schema_version = 1\nvertical = \n", encoding="utf-8")
    code, _, stderr = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL, "--snapshot-dir", str(tmp_path))
    assert code == 4 and "not valid TOML" in stderr and str(tmp_path) in stderr


def test_pull_with_the_database_down_writes_nothing(dead_env: None, capsys, tmp_path: Path) -> None:
    """Pull exits non-zero, leaves an existing file untouched and leaves no temporary file behind."""
    shutil.copy(SHIPPED, tmp_path / f"{VERTICAL}.toml")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, stdout, stderr = run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))
    assert code == 4 and stdout == "" and "ConnectError" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / f"{VERTICAL}.toml").read_bytes() == SHIPPED.read_bytes()
    empty = tmp_path / "empty"
    assert run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(empty))[0] == 4
    assert not empty.exists()


def test_pull_to_an_unwritable_place_is_one_line(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """An --out that is a file is reported in one line with exit 4, not a traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    code, _, stderr = run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(blocker))
    assert code == 4 and stderr.count("\n") == 1 and "cannot write" in stderr


def test_pull_refuses_an_invalid_database_config_listing_every_problem(
    db_env: SeededDatabase, capsys, tmp_path: Path
) -> None:
    """Bad node content and a missing theme row are all listed, and no file is written."""
    content = dict(database_copy()["nodes"]["verify"])
    content.update(valid_contexts=["qualify", "nowhere"], step_criteria_lk="verified = True")
    set_node_content(db_env.dsn, VERTICAL, "verify", content)
    set_theme(db_env.dsn, VERTICAL, None)
    set_active_model(db_env.dsn, "livekit_available_llm_models", "mystery/model-9")
    code, _, stderr = run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))
    assert code == 1
    assert "database: theme: no row in theme_prompts" in stderr
    assert "database: nodes.verify.valid_contexts: target 'nowhere' is not a node" in stderr
    assert "database: nodes.verify.step_criteria_lk: criteria expression" in stderr
    assert "database: models.livekit.llm: livekit llm model 'mystery/model-9': unknown provider" in stderr
    assert "nothing written" in stderr and list(tmp_path.iterdir()) == []


def test_commands_needing_the_database_say_so(clean_env: None, capsys, tmp_path: Path) -> None:
    """Without SUPABASE_URL, pull, diff and seed exit 2 naming the variables."""
    for command in ("pull", "diff", "seed"):
        code, _, stderr = run_cli(capsys, "snapshot", command, "--vertical", VERTICAL)
        assert code == 2 and "SUPABASE_URL" in stderr


# -- check ---------------------------------------------------------------------------------------


def test_check_names_a_dangling_target_and_a_bad_criteria_expression(clean_env: None, capsys, tmp_path: Path) -> None:
    """Both problems are reported at once, each with the file and the field."""
    directory = _snapshot_copy(
        tmp_path,
        {
            "target": (
                'valid_contexts = ["verify", "answer", "quote", "goodbye"]',
                'valid_contexts = ["verify", "answer", "quote", "goodbye", "nowhere"]',
            ),
            "criteria": (
                'step_criteria_lk = "verified == True or verify_attempts >= 2"',
                'step_criteria_lk = "verified = True"',
            ),
        },
    )
    path = directory / f"{VERTICAL}.toml"
    code, stdout, _ = run_cli(capsys, "snapshot", "check", str(directory))
    assert code == 1
    assert f"{path}: nodes.greet.valid_contexts: target 'nowhere' is not a node" in stdout
    assert re.search(
        rf"^{re.escape(str(path))}: nodes\.verify\.step_criteria_lk: criteria expression "
        r"'verified = True' is not valid syntax",
        stdout,
        re.M,
    )
    assert "2 error(s)" in stdout


def test_check_reports_schema_theme_and_model_problems_together(clean_env: None, capsys, tmp_path: Path) -> None:
    """A missing stamp, a missing theme section, bad model strings and a missing platform all show up in one run."""
    directory = _snapshot_copy(
        tmp_path,
        {
            "source": ('source = "hand-written baseline (no database export yet)"\n', ""),
            "section": ("guardrails = ", "guard_rails = "),
            "llm": ('llm = "openai/gpt-5"', 'llm = { value = "openai/gpt-5", is_custom = true }'),
            "stt": ('stt = "deepgram:nova-3"', 'stt = "deepgram/nova-3"'),
            "tool": ('tools = ["mark_quote_presented"]', 'tools = ["mark quote"]'),
        },
    )
    text = (directory / f"{VERTICAL}.toml").read_text()
    (directory / f"{VERTICAL}.toml").write_text(text.split("[models.signalwire]")[0], encoding="utf-8")
    code, stdout, _ = run_cli(capsys, "snapshot", "check", str(directory / f"{VERTICAL}.toml"))
    assert code == 1
    for field in (
        "source",
        "theme.guardrails",
        "theme.guard_rails",
        "models.livekit.llm.is_custom",
        "models.signalwire",
        "nodes.quote.tools",
    ):
        assert f": {field}: " in stdout, field
    (shipped_check, _, _) = run_cli(capsys, "snapshot", "check")
    assert shipped_check == 0


def test_check_warns_about_reachability_and_fails_only_when_strict(clean_env: None, capsys, tmp_path: Path) -> None:
    """An unreachable node is a warning (exit 0) unless --strict (exit 1)."""
    directory = _snapshot_copy(tmp_path, {"orphan": ("[models.livekit]", _ORPHAN + "\n[models.livekit]")})
    code, stdout, _ = run_cli(capsys, "snapshot", "check", str(directory))
    assert code == 0 and "warning: " in stdout and "nodes.survey: unreachable from start node 'greet'" in stdout
    assert run_cli(capsys, "snapshot", "check", "--strict", str(directory))[0] == 1


def test_check_without_files_is_an_error(clean_env: None, capsys, tmp_path: Path) -> None:
    """A missing path or a directory without snapshots exits 2."""
    assert run_cli(capsys, "snapshot", "check", str(tmp_path / "absent"))[0] == 2
    assert run_cli(capsys, "snapshot", "check", str(tmp_path))[0] == 2


# -- graph ---------------------------------------------------------------------------------------

_ORPHAN = """[nodes.survey]
role = "You run a short survey."
instructions = "Ask one question."
valid_contexts = ["goodbye"]
tools = ["record_survey"]
"""
_MERMAID_NODE = re.compile(r'^    (n_\w+)(\(\["|\["|\(\(\(")(.*?)("\]\)|"\]|"\)\)\))$')
_MERMAID_EDGE = re.compile(r"^    (n_\w+) --> (n_\w+)$")
_MERMAID_CLASS = re.compile(r"^    class (n_\w+) (\w+)$")
_MERMAID_CLASSDEF = re.compile(r"^    classDef (\w+) ([a-z-]+:[^,;]+(?:,[a-z-]+:[^,;]+)*)$")


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str]], dict[str, set[str]]]:
    """Parse a flowchart: node id to label, edges, node id to classes; fail on any unknown line."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    classes: dict[str, set[str]] = {}
    defined: set[str] = set()
    for line in lines[1:]:
        if line.startswith("    %%"):
            continue
        if m := _MERMAID_NODE.match(line):
            opening, closing = m[2], m[4]
            assert {'(["': '"])', '["': '"]', '((("': '")))'}[opening] == closing, line
            assert '"' not in m[3]
            nodes[m[1]] = m[3]
        elif m := _MERMAID_EDGE.match(line):
            edges.append((m[1], m[2]))
        elif m := _MERMAID_CLASSDEF.match(line):
            defined.add(m[1])
        elif m := _MERMAID_CLASS.match(line):
            assert m[2] in defined, line
            classes.setdefault(m[1], set()).add(m[2])
        else:
            raise AssertionError(f"not mermaid flowchart syntax: {line!r}")
    assert all(a in nodes and b in nodes for a, b in edges) and set(classes) <= set(nodes)
    return nodes, edges, classes


def test_graph_of_the_shipped_snapshot_parses_as_mermaid(clean_env: None, capsys) -> None:
    """Node and edge counts match the config, tools are in the labels, start and end are marked, nothing is flagged."""
    code, stdout, _ = run_cli(capsys, "snapshot", "graph", "--vertical", VERTICAL)
    assert code == 0
    nodes, edges, classes = parse_mermaid(stdout)
    config = shipped_snapshot()["nodes"]
    assert len(nodes) == len(config) == 9
    assert len(edges) == sum(len(n["valid_contexts"]) for n in config.values())
    assert set(edges) == {(f"n_{a}", f"n_{b}") for a, n in config.items() for b in n["valid_contexts"]}
    assert "verify_caller_identity, update_lead_info" in nodes["n_verify"]
    assert classes == {f"n_{START_NODE}": {"start"}, f"n_{END_NODE}": {"terminal"}}
    assert stdout.count(f"n_{END_NODE}(((") == 1


def test_graph_flags_an_unreachable_node(clean_env: None, capsys, tmp_path: Path) -> None:
    """A node nobody can enter gets the unreachable class and a marker in its label, in Mermaid and DOT."""
    directory = _snapshot_copy(tmp_path, {"orphan": ("[models.livekit]", _ORPHAN + "\n[models.livekit]")})
    code, stdout, _ = run_cli(capsys, "snapshot", "graph", "--vertical", VERTICAL, "--snapshot-dir", str(directory))
    assert code == 0
    nodes, edges, classes = parse_mermaid(stdout)
    assert len(nodes) == 10 and ("n_survey", "n_goodbye") in edges
    assert classes["n_survey"] == {"unreachable"}
    assert "unreachable from greet" in nodes["n_survey"] and "record_survey" in nodes["n_survey"]
    assert all("unreachable" not in c for n, c in classes.items() if n != "n_survey")
    code, dot, _ = run_cli(
        capsys, "snapshot", "graph", "--vertical", VERTICAL, "--snapshot-dir", str(directory), "--format", "dot"
    )
    assert code == 0 and dot.splitlines()[1] == "digraph flow {" and dot.rstrip().endswith("}")
    assert len(re.findall(r'^    "\w+" -> "\w+";$', dot, re.M)) == len(edges)
    assert re.search(r'^    "survey" \[.*fillcolor="#f8d7da"', dot, re.M)
    assert re.search(r'^    "end" \[.*shape=doublecircle', dot, re.M)


def test_graph_flags_a_node_that_cannot_reach_end(clean_env: None, capsys, tmp_path: Path) -> None:
    """A node with no way out toward end gets the dead-end class."""
    directory = _snapshot_copy(
        tmp_path,
        {
            "book": (
                'valid_contexts = ["goodbye"]\ntools = ["check_broker',
                'valid_contexts = []\ntools = ["check_broker',
            )
        },
    )
    code, stdout, _ = run_cli(capsys, "snapshot", "graph", "--vertical", VERTICAL, "--snapshot-dir", str(directory))
    _, _, classes = parse_mermaid(stdout)
    assert code == 0 and classes["n_book"] == {"deadend"}


def test_live_graph_marks_nodes_served_from_a_fallback(db_env: SeededDatabase, capsys) -> None:
    """With --live, a node whose database row is invalid is drawn as served from the snapshot; the rest are not."""
    set_node_content(db_env.dsn, VERTICAL, "quote", '"not an object"')
    code, stdout, _ = run_cli(capsys, "snapshot", "graph", "--vertical", VERTICAL, "--live", "--platform", "signalwire")
    assert code == 0
    nodes, _, classes = parse_mermaid(stdout)
    assert {n for n, c in classes.items() if "fallback" in c} == {"n_quote"}
    assert "served from snapshot" in nodes["n_quote"] and "resolved live" in stdout


# -- seed ----------------------------------------------------------------------------------------


async def _resolve_all(url: str) -> dict[str, object]:
    configs = {}
    async with Resolver(database=SupabaseSource(url, TEST_KEY), snapshots=SnapshotSource(), ttl=0) as resolver:
        for platform in ("livekit", "signalwire"):
            configs[platform] = await resolver.resolve(VERTICAL, platform)  # type: ignore[arg-type]
    return configs


def test_seed_into_an_empty_database_then_resolve_reads_everything_from_it(
    clean_dsn: str, standin, clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """After seeding an empty database, every component of both platforms comes from it; reseeding writes nothing."""
    seeded = SeededDatabase(dsn=clean_dsn, url=standin.url, key=TEST_KEY, standin=standin)
    monkeypatch.setenv("SUPABASE_URL", seeded.url)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", seeded.key)
    code, stdout, _ = run_cli(capsys, "snapshot", "seed", "--vertical", VERTICAL)
    assert code == 0 and "seeded 16 component(s)" in stdout
    snap = load_snapshot(SHIPPED)
    configs = asyncio.run(_resolve_all(seeded.url))
    for platform, config in configs.items():
        assert len(config.provenance) == 13
        assert {p.source for p in config.provenance.values()} == {Source.DATABASE}
        assert config.theme == snap.component("theme", platform)
        assert config.nodes == {name: snap.component(f"nodes.{name}", platform) for name in NODES}
        for kind in ("stt", "llm", "tts"):
            assert getattr(config.models, kind) == snap.component(f"models.{kind}", platform)
    standin.clear_requests()
    code, stdout, _ = run_cli(capsys, "snapshot", "seed", "--vertical", VERTICAL)
    assert code == 0 and "nothing to do" in stdout and _writes(seeded) == []
    assert run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL)[0] == 0


def test_seed_refuses_different_active_rows_unless_forced(db_env: SeededDatabase, capsys) -> None:
    """Seeding over a populated database writes nothing and exits 1; --force replaces the rows, one active each."""
    db_env.standin.clear_requests()
    code, stdout, stderr = run_cli(capsys, "snapshot", "seed", "--vertical", VERTICAL)
    assert code == 1 and "refused: 16 component(s)" in stderr and _writes(db_env) == []
    assert "conflict models.livekit.llm: database has 'openai/gpt-4.1' active (model tables are global" in stdout
    assert run_cli(capsys, "snapshot", "seed", "--vertical", VERTICAL, "--dry-run", "--force")[0] == 0
    assert _writes(db_env) == []
    code, stdout, _ = run_cli(capsys, "snapshot", "seed", "--vertical", VERTICAL, "--force")
    assert code == 0 and "seeded 16 component(s)" in stdout
    assert run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL)[0] == 0
    with psycopg.connect(db_env.dsn) as conn:
        per_prompt = conn.execute(
            "SELECT count(*) FILTER (WHERE v.is_active) FROM prompts p JOIN prompt_versions v"
            " ON v.prompt_id = p.id GROUP BY p.id"
        ).fetchall()
        assert [n for (n,) in per_prompt] == [1] * len(NODES)
        for table in ("livekit_available_llm_models", "livekit_available_voices", "signalwire_available_voices"):
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE is_active").fetchone() == (1,)
        authors = conn.execute("SELECT DISTINCT created_by FROM prompt_versions WHERE is_active").fetchall()
        assert authors == [("livekit-fallback snapshot seed",)]
    db_env.standin.clear_requests()
    assert run_cli(capsys, "snapshot", "seed", "--vertical", VERTICAL)[0] == 0 and _writes(db_env) == []


def test_seed_refuses_an_invalid_snapshot(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """A snapshot that fails check is never written to the database."""
    directory = _snapshot_copy(
        tmp_path,
        {
            "criteria": (
                'step_criteria_lk = "verified == True or verify_attempts >= 2"',
                "step_criteria_lk = \"__import__('os')\"",
            )
        },
    )
    db_env.standin.clear_requests()
    code, _, stderr = run_cli(
        capsys, "snapshot", "seed", "--vertical", VERTICAL, "--snapshot-dir", str(directory), "--force"
    )
    assert code == 1 and "nodes.verify.step_criteria_lk" in stderr and db_env.standin.requests == []


# -- writer ---------------------------------------------------------------------------------------

TRICKY = [
    "two  spaces " * 30,
    "x" * 250 + " tail",
    'ends with a quote"',
    'ends with two ""',
    '"""triple""" quotes',
    "back\\slash \\",
    "trailing   \nspaces  ",
    "\nleading newline",
    "tab\there",
    "control\x01char\r\n",
    "ends with newline\n",
    " ",
    "word " * 60,
    '"' * 7,
    "a\\ \nb",
    "ünïcödé — “quotes”",
]


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_rendered_prose_round_trips_exactly(text: str) -> None:
    """Any prompt text survives render -> tomllib unchanged, and wrapped lines stay within the width."""
    data = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    data["theme"] = {"content": text}
    data["nodes"]["greet"]["role"] = text or "x"
    rendered = render_snapshot(data)  # raises if it does not parse back to the same data
    assert tomllib.loads(rendered) == data
    assert all(len(line) <= WIDTH for line in rendered.splitlines() if line.endswith(" \\") and " " in line[:-2])


def test_forced_seed_that_fails_midway_keeps_an_active_model(db_env: SeededDatabase, capsys) -> None:
    """If switching a model row on fails, the previously active row is switched back on: never zero active rows."""
    import psycopg

    with psycopg.connect(db_env.dsn) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_gpt5() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.is_active AND NEW.model_id_full = 'openai/gpt-5' THEN RAISE EXCEPTION 'refused by test'; END IF;"
            " RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_gpt5 BEFORE UPDATE ON livekit_available_llm_models"
            " FOR EACH ROW EXECUTE FUNCTION refuse_gpt5()"
        )
    try:
        code, _, stderr = run_cli(capsys, "snapshot", "seed", "--vertical", VERTICAL, "--force")
        with psycopg.connect(db_env.dsn) as conn:
            active = conn.execute("SELECT model_id_full FROM livekit_available_llm_models WHERE is_active").fetchall()
    finally:
        with psycopg.connect(db_env.dsn) as conn:
            conn.execute("DROP TRIGGER refuse_gpt5 ON livekit_available_llm_models")
            conn.execute("DROP FUNCTION refuse_gpt5()")
    assert code != 0 and "Traceback" not in stderr
    assert active == [("openai/gpt-4.1",)]


# -- backups -------------------------------------------------------------------------------------


def test_pull_writes_ranked_backups_and_diff_sees_them_change(db_env: SeededDatabase, capsys, tmp_path: Path) -> None:
    """Ranked rows are pulled as [models.livekit.backups] in rank order; a re-ranking is reported as drift."""
    set_backups(db_env.dsn, "livekit_available_llm_models", ["openai/gpt-4.1-mini", "google/gemini-2.5-flash"])
    assert run_cli(capsys, "snapshot", "pull", "--vertical", VERTICAL, "--out", str(tmp_path))[0] == 0
    text = (tmp_path / f"{VERTICAL}.toml").read_text(encoding="utf-8")
    assert '[models.livekit.backups]\nllm = ["openai/gpt-4.1-mini", "google/gemini-2.5-flash"]\n' in text
    assert render_snapshot(tomllib.loads(text)) == text
    assert run_cli(capsys, "snapshot", "check", str(tmp_path))[0] == 0
    set_backups(db_env.dsn, "livekit_available_llm_models", ["google/gemini-2.5-flash"])
    code, stdout, _ = run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL, "--snapshot-dir", str(tmp_path))
    assert code == 1
    assert (
        "~ backups.livekit.llm: changed: snapshot ['openai/gpt-4.1-mini', 'google/gemini-2.5-flash'] "
        "-> database ['google/gemini-2.5-flash']" in stdout
    )
    assert "DRIFT: all 16 components are equal; backup lists differ: backups.livekit.llm" in stdout


def test_seed_ranks_the_snapshot_backups(db_env: SeededDatabase, capsys) -> None:
    """Seeding ranks the snapshot's backups 1, 2, ... (inserting missing rows inactive) and unranks the rest."""
    set_backups(db_env.dsn, "livekit_available_stt_models", ["deepgram/nova-2:en"])
    code, stdout, _ = run_cli(capsys, "snapshot", "seed", "--vertical", VERTICAL, "--force")
    assert code == 0 and "seeded 16 component(s) and 3 backup list(s)" in stdout
    assert "conflict backups.livekit.stt: database ranks 'deepgram/nova-2:en' as backups" in stdout
    with psycopg.connect(db_env.dsn) as conn:
        ranked = conn.execute(
            "SELECT model_id_full, backup_rank, is_active FROM livekit_available_stt_models"
            " WHERE backup_rank IS NOT NULL"
        ).fetchall()
        voices = conn.execute("SELECT voice_id_full FROM livekit_available_voices WHERE backup_rank = 1").fetchall()
    assert sorted(ranked, key=lambda row: row[1]) == [
        ("openai/gpt-4o-mini-transcribe:en", 1, False),
        ("assemblyai/universal-streaming:en", 2, False),
    ]
    assert voices == [("openai/gpt-4o-mini-tts:alloy",)]
    assert run_cli(capsys, "snapshot", "diff", "--vertical", VERTICAL)[0] == 0
