"""The livekit-fallback command in-process with no database: output contracts, exit codes, wiring."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from livekit_fallback.cli import ExitCode, build_parser, main
from livekit_fallback.cli.exit_codes import EXIT_CODES_EPILOG
from livekit_fallback.cli.log_handler import CliHandler

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
VERTICAL = "reverse_mortgage"
NODE_NAMES = ["greet", "verify", "qualify", "quote", "answer", "objections", "book", "goodbye", "end"]
DEAD_URL = "http://127.0.0.1:1"


@pytest.fixture(autouse=True)
def _isolated(clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No database settings, a private cache directory, and the command's log handler removed afterwards."""
    monkeypatch.setenv("LIVEKIT_FALLBACK_CACHE_DIR", str(tmp_path / "cache"))
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if isinstance(h, CliHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Call ``main`` with ``args``; returns exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def usage_exit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[object, str, str]:
    """Call ``main`` where argparse is expected to exit; returns the exit code, stdout, stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.mark.parametrize("platform", ["livekit", "signalwire"])
def test_resolve_json_without_database_is_all_snapshot(capsys: pytest.CaptureFixture[str], platform: str) -> None:
    """With no database configured every component is from the snapshot, and one WARNING says so."""
    code, out, err = run(capsys, "resolve", "--vertical", VERTICAL, "--platform", platform, "--json")
    assert code == ExitCode.OK, err
    data = json.loads(out)
    assert data["vertical"] == VERTICAL and data["platform"] == platform
    assert isinstance(data["elapsed_ms"], (int, float)) and data["degraded"] is True
    assert data["theme"]["source"] == "snapshot" and data["theme"]["reason"] == "not_configured"
    assert list(data["nodes"]) == NODE_NAMES
    assert all(n["source"] == "snapshot" for n in data["nodes"].values())
    assert set(data["models"]) == {"stt", "llm", "tts"}
    expected_llm = "openai/gpt-5" if platform == "livekit" else "gpt-4.1-mini"
    assert data["models"]["llm"] == {**data["models"]["llm"], "source": "snapshot", "value": expected_llm}
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "snapshot mode" in warnings[0]
    assert "DATABASE FAILURE" not in err


def test_resolve_json_carries_the_status_health_record(capsys: pytest.CaptureFixture[str]) -> None:
    """`resolve --json` adds "health" in exactly the shape `status` prints, keeping its own keys."""
    code, out, _ = run(capsys, "resolve", "--vertical", VERTICAL, "--json")
    resolved = json.loads(out)
    status_code, status_out, _ = run(capsys, "status", "--vertical", VERTICAL)
    status = json.loads(status_out)
    assert (code, status_code) == (ExitCode.OK, ExitCode.DEGRADED)
    assert list(resolved) == ["vertical", "platform", "elapsed_ms", "degraded", "theme", "nodes", "models", "health"]
    assert resolved["health"] == status
    assert list(status) == ["status", "database", "degraded"]
    assert status["status"] == "degraded"
    assert status["database"] == {
        "configured": False,
        "reachable": None,
        "since": None,
        "breaker": "closed",
        "last_error": None,
    }
    components = status["degraded"][f"{VERTICAL}/livekit"]
    assert len(components) == 13
    assert components["nodes.verify"] == {
        "source": "snapshot",
        "reason": "not_configured",
        "detail": components["nodes.verify"]["detail"],
    }


def test_resolve_table_lists_every_component(capsys: pytest.CaptureFixture[str]) -> None:
    """The human table has one row per component with its source and reason."""
    code, out, err = run(capsys, "resolve", "--vertical", VERTICAL)
    assert code == ExitCode.OK, err
    rows = [line.split()[:3] for line in out.splitlines()[3:]]
    assert [r[0] for r in rows] == [
        "theme",
        *(f"nodes.{n}" for n in NODE_NAMES),
        "models.stt",
        "models.llm",
        "models.tts",
    ]
    assert {(r[1], r[2]) for r in rows} == {("snapshot", "not_configured")}


@pytest.mark.parametrize("command", ["resolve", "status"])
def test_unknown_vertical_exits_failed_with_one_line(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """A vertical with neither database nor snapshot exits 4 (failed) with a one-line reason on stderr."""
    code, out, err = run(capsys, command, "--vertical", "solar")
    assert code == ExitCode.FAILED == 4 and out == ""
    assert "no usable configuration for solar/livekit" in err


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SUPABASE_URL": "db.example.com", "SUPABASE_SERVICE_KEY": "k"}, "must start with http"),
        ({"SUPABASE_URL": "https://db.example.com"}, "SUPABASE_SERVICE_KEY (or SUPABASE_KEY) is not set"),
        ({"LIVEKIT_FALLBACK_DEADLINE": "soon"}, "must be a number of seconds"),
    ],
)
def test_bad_settings_exit_usage_naming_the_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    """Unusable environment settings are a usage error (2) naming the variable."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, "resolve", "--vertical", VERTICAL)
    assert code == ExitCode.USAGE == 2
    assert fragment in err and "configuration error" in err


def test_argparse_errors_are_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing required option, an unknown subcommand and an unknown log level all exit 2."""
    for args in (("resolve",), ("frobnicate",), ("--log-level", "LOUD", "resolve", "--vertical", VERTICAL)):
        code, _, err = usage_exit(capsys, *args)
        assert code == ExitCode.USAGE and "usage: livekit-fallback" in err, args


def test_help_documents_the_exit_code_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` ends with the exit-code table, one line per code."""
    code, out, _ = usage_exit(capsys, "--help")
    assert code == ExitCode.OK
    assert EXIT_CODES_EPILOG.strip() in out
    for exit_code in ExitCode:
        assert any(line.startswith(f"  {exit_code.value} ") for line in EXIT_CODES_EPILOG.splitlines()), exit_code


def test_exit_codes_have_one_meaning_each() -> None:
    """No two ExitCode names share a number, and usage is argparse's own 2."""
    values = [member.value for member in ExitCode.__members__.values()]
    assert len(values) == len(set(values))
    assert (ExitCode.OK, ExitCode.PROBLEMS, ExitCode.USAGE, ExitCode.DEGRADED, ExitCode.FAILED) == (0, 1, 2, 3, 4)


def test_every_command_group_is_registered() -> None:
    """The parser offers resolve, status, snapshot, swml and serve without importing anything by name."""
    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if a.dest == "command")
    assert set(subparsers.choices) == {"resolve", "status", "snapshot", "swml", "serve"}  # type: ignore[union-attr]


def test_console_script_names_main() -> None:
    """The console script in pyproject.toml points at livekit_fallback.cli:main."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    assert scripts == {"livekit-fallback": "livekit_fallback.cli:main"}


def test_swml_with_an_unimportable_tools_target_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """`swml --tools` naming nothing importable exits 2 with the reason, before resolving."""
    code, out, err = run(
        capsys, "swml", "--vertical", VERTICAL, "--webhook-url", "https://u:p@example.com/swaig", "--tools", "nope"
    )
    assert code == ExitCode.USAGE and out == ""
    assert "--tools must look like package.module:attribute" in err


def test_swml_prints_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    """`swml --compact` prints one JSON line on stdout; the snapshot-mode warning goes to stderr."""
    code, out, err = run(capsys, "swml", "--vertical", VERTICAL, "--webhook-url", "https://u:p@e.com/s", "--compact")
    assert code == ExitCode.OK
    assert out.count("\n") == 1 and json.loads(out)["version"] == "1.0.0"
    assert "snapshot mode" in err


def test_snapshot_check_of_the_packaged_snapshots_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    """`snapshot check` with no arguments validates the packaged snapshots and exits 0."""
    code, out, _ = run(capsys, "snapshot", "check")
    assert code == ExitCode.OK and out.rstrip().endswith(": OK")


def test_snapshot_check_of_a_missing_path_is_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`snapshot check` of a path that does not exist exits 2, not 1 (which would mean an invalid snapshot)."""
    code, _, err = run(capsys, "snapshot", "check", str(tmp_path / "missing"))
    assert code == ExitCode.USAGE and "missing" in err


def test_snapshot_database_commands_without_settings_are_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """pull, diff and seed without SUPABASE_URL exit 2 naming the variables."""
    for command in ("pull", "diff", "seed"):
        code, _, err = run(capsys, "snapshot", command, "--vertical", VERTICAL)
        assert code == ExitCode.USAGE and "SUPABASE_URL" in err, command


def test_snapshot_diff_without_a_snapshot_is_failed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`snapshot diff` of a vertical that has no snapshot file could not compare anything: exit 4, not 1 (drift)."""
    monkeypatch.setenv("SUPABASE_URL", DEAD_URL)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", "service-key-xyz")
    code, out, err = run(capsys, "snapshot", "diff", "--vertical", "solar")
    assert code == ExitCode.FAILED and out == "" and "DRIFT" not in err
    assert "service-key-xyz" not in err


def test_snapshot_graph_draws_the_snapshot_flow(capsys: pytest.CaptureFixture[str]) -> None:
    """`snapshot graph` prints a Mermaid flowchart of the packaged snapshot and exits 0."""
    code, out, _ = run(capsys, "snapshot", "graph", "--vertical", VERTICAL)
    assert code == ExitCode.OK and out.startswith(("flowchart", "---", "%%"))
    assert "greet" in out
