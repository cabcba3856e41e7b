"""Backup chains in process: order, duplicates, routes, the unbuildable reason, and the snapshot's backup lists."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest
import tomllib
from livekit.agents import llm

from livekit_fallback.config.model import AgentConfig, ModelChoice, Models, Provenance, Reason, Source
from livekit_fallback.config.model_alarms import ModelAlarms
from livekit_fallback.config.sources.snapshot import default_snapshot_dir, load_snapshot
from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.state import ResolutionState
from livekit_fallback.providers import build_chain, effective_config
from livekit_fallback.snapshots.check import check_data
from livekit_fallback.snapshots.write import render_snapshot
from tests.helpers_livekit import snapshot_config

pytestmark = pytest.mark.unit

ALL_KEYS = {
    "OPENAI_API_KEY": "sk-dummy",
    "LIVEKIT_API_KEY": "lk-dummy-key",
    "LIVEKIT_API_SECRET": "lk-dummy-secret-" + "x" * 32,
    "LIVEKIT_URL": "wss://demo-abc123.livekit.cloud",
}
TABLE = "livekit_available_llm_models"
SHIPPED = default_snapshot_dir() / "reverse_mortgage.toml"


def llm_choice(value: str) -> ModelChoice:
    """A LiveKit LLM choice."""
    return ModelChoice(kind="llm", platform="livekit", value=value)


def with_llm(config: AgentConfig, value: str, *backups: str) -> AgentConfig:
    """The config with a database LLM and database-ranked backups placed before the snapshot's."""
    read = Provenance(source=Source.DATABASE, taken_at=datetime.now(timezone.utc), location=TABLE)
    models = Models(stt=config.models.stt, llm=llm_choice(value), tts=config.models.tts)
    ranked = tuple((llm_choice(v), read) for v in backups)
    return config.model_copy(
        update={
            "models": models,
            "provenance": {**config.provenance, "models.llm": read},
            "backups": {**config.backups, "llm": ranked + config.backups["llm"]},
        }
    )


async def test_the_chain_is_active_backups_snapshot_then_the_other_route_without_duplicates() -> None:
    """Active, ranked rows, snapshot list, snapshot choice, then the active model via Inference; no repeats."""
    config = with_llm(await snapshot_config(), "openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4.1")
    chain = build_chain(config, "llm", env=ALL_KEYS, alarms=_alarms())
    assert isinstance(chain.instance, llm.FallbackAdapter)
    assert [(m.choice.value, m.path) for m in chain.models] == [
        ("openai/gpt-4.1", "plugin"),
        ("openai/gpt-4.1-mini", "plugin"),
        ("google/gemini-2.5-flash", "inference"),
        ("openai/gpt-5", "plugin"),
        ("openai/gpt-4.1", "inference"),
    ]
    assert chain.instance._llm_instances == [m.instance for m in chain.models]
    assert chain.unbuildable is None and chain.provenance.source is Source.DATABASE
    assert effective_config(config, [chain]) is config


def _alarms() -> ModelAlarms:
    """Model alarms over a state of their own (nothing shared with other tests)."""
    return ModelAlarms(ResolutionState(MemoryStorage(), "snapshot"))


async def test_entries_that_cannot_be_built_are_left_out_and_one_entry_is_not_wrapped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without LiveKit credentials the Inference-only backup is left out (said once); a single entry stays bare."""
    config = await snapshot_config()  # active = the snapshot's choice, so only its backup list remains
    with caplog.at_level(logging.WARNING, logger="livekit_fallback"):
        chain = build_chain(config, "llm", env={"OPENAI_API_KEY": "sk-dummy"}, alarms=_alarms())
        build_chain(config, "llm", env={"OPENAI_API_KEY": "sk-dummy"}, alarms=_alarms())
    assert [m.choice.value for m in chain.models] == ["openai/gpt-5", "openai/gpt-4.1-mini"]
    only_inference = config.model_copy(update={"backups": {**config.backups, "llm": config.backups["llm"][:1]}})
    alone = build_chain(only_inference, "llm", env={"OPENAI_API_KEY": "sk-dummy"}, alarms=_alarms())
    assert [m.choice.value for m in alone.models] == ["openai/gpt-5"]
    assert not isinstance(alone.instance, llm.FallbackAdapter)
    said = [r for r in caplog.records if "google/gemini-2.5-flash" in r.getMessage()]
    assert len(said) <= 1  # once per process, however many calls


async def test_without_runtime_fallback_only_the_first_buildable_entry_is_built() -> None:
    """runtime_fallback=False builds the active model alone, with no adapter."""
    config = with_llm(await snapshot_config(), "openai/gpt-4.1", "openai/gpt-4.1-mini")
    chain = build_chain(config, "llm", env=ALL_KEYS, alarms=_alarms(), runtime_fallback=False)
    assert [m.choice.value for m in chain.models] == ["openai/gpt-4.1"]
    assert not isinstance(chain.instance, llm.FallbackAdapter)


async def test_an_unbuildable_active_model_replaced_by_a_ranked_row_is_still_degraded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A groq row with no key, replaced by the database's own backup: reason unbuildable, config degraded."""
    config = with_llm(await snapshot_config(), "groq/llama-3.3-70b", "openai/gpt-4.1-mini")
    assert "models.llm" not in config.degraded
    alarms = _alarms()
    with caplog.at_level(logging.ERROR, logger="livekit_fallback"):
        chain = build_chain(config, "llm", env={"OPENAI_API_KEY": "sk-dummy"}, alarms=alarms)
        await alarms.settled()
    assert [m.choice.value for m in chain.models] == ["openai/gpt-4.1-mini", "openai/gpt-5"]
    assert chain.provenance.source is Source.DATABASE and chain.provenance.reason is Reason.UNBUILDABLE
    running = effective_config(config, [chain])
    assert running.models.llm.value == "openai/gpt-4.1-mini"
    assert running.is_degraded and "models.llm" in running.degraded
    [banner] = [r for r in caplog.records if "MODEL UNAVAILABLE" in r.getMessage()]
    assert "Using fallback LLM model 'openai/gpt-4.1-mini' from database copy read" in banner.getMessage()
    assert f"Table: {TABLE}" in banner.getMessage()


def test_the_shipped_snapshot_lists_another_provider_per_kind_in_canonical_layout() -> None:
    """reverse_mortgage.toml: each kind's backups start with a plugin of this package, STT/TTS of another provider."""
    text = SHIPPED.read_text(encoding="utf-8")
    assert render_snapshot(tomllib.loads(text)) == text
    snapshot = load_snapshot(SHIPPED)
    plugins = {"stt": {"deepgram", "openai"}, "llm": {"openai"}, "tts": {"elevenlabs", "openai"}}
    for kind in ("stt", "llm", "tts"):
        backups = snapshot.backup_choices("livekit", kind)
        active, _ = snapshot.model_value("livekit", kind)
        assert any(b.provider != active.split("/")[0] for b in backups)  # another provider (Inference for LLM)
        assert any(b.provider in plugins[kind] and b.value != active for b in backups)  # buildable with keys only
        if kind != "llm":
            assert backups[0].provider in plugins[kind] and backups[0].provider != active.split("/")[0]
    assert snapshot.backup_choices("signalwire", "llm") == []


def test_check_reports_bad_backup_entries(tmp_path: Path) -> None:
    """A backup list that is not a list, names an unknown kind or an unknown provider is reported by check."""
    data = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    data["models"]["livekit"]["backups"] = {
        "llm": ["nobody/model", "openai/gpt-5", "openai/gpt-5"],
        "tts": "x",
        "vad": [],
    }
    problems = {(p.field, p.severity) for p in check_data(data, "file")}
    assert ("models.livekit.backups.llm[0]", "error") in problems
    assert ("models.livekit.backups.tts", "error") in problems
    assert ("models.livekit.backups.vad", "error") in problems
    assert ("models.livekit.backups.llm", "warning") in problems  # listed twice
    (tmp_path / "reverse_mortgage.toml").write_text(
        SHIPPED.read_text(encoding="utf-8").replace(
            'llm = ["google/gemini-2.5-flash", "openai/gpt-4.1-mini"]', 'llm = ["nobody/model", "openai/gpt-4.1-mini"]'
        ),
        encoding="utf-8",
    )
    snapshot = load_snapshot(tmp_path / "reverse_mortgage.toml")
    assert [c.value for c in snapshot.backup_choices("livekit", "llm")] == ["openai/gpt-4.1-mini"]
