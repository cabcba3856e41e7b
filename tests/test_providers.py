"""Model factories: plugin or LiveKit Inference instances, snapshot fallback, runtime backup (no network)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
from livekit.agents import inference, llm, stt, tts
from livekit.plugins import deepgram, elevenlabs, openai

from livekit_fallback.config.model import AgentConfig, ModelChoice, Models, Provenance, Source
from livekit_fallback.config.model_alarms import ModelAlarms
from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.state import ResolutionState
from livekit_fallback.providers import ModelBuildError, build_chain, build_llm, build_model, build_stt, build_tts
from tests.helpers_livekit import VERTICAL, snapshot_config

PLUGIN_KEYS = {"DEEPGRAM_API_KEY": "dg-dummy", "OPENAI_API_KEY": "sk-dummy", "ELEVEN_API_KEY": "el-dummy"}
SELF_HOSTED = {"LIVEKIT_API_KEY": "lk-dummy-key", "LIVEKIT_API_SECRET": "lk-dummy-secret-" + "x" * 32}
"""What a worker of a self-hosted LiveKit server has: credentials, no Inference."""
LIVEKIT_KEYS = {**SELF_HOSTED, "LIVEKIT_URL": "wss://demo-abc123.livekit.cloud"}
"""A LiveKit Cloud worker's environment: Inference can answer."""
SNAPSHOT_VOICE = "EXAVITQu4vr4xnSDxMaL"


def choice(kind: str, value: str, is_custom: bool = False) -> ModelChoice:
    """A LiveKit model choice."""
    return ModelChoice(kind=kind, platform="livekit", value=value, is_custom=is_custom)  # type: ignore[arg-type]


def with_models(config: AgentConfig, source: Source = Source.DATABASE, **values: ModelChoice) -> AgentConfig:
    """The config with some models replaced, as if those rows came from ``source``."""
    models = Models(**{**{k: getattr(config.models, k) for k in ("stt", "llm", "tts")}, **values})
    provenance = {**config.provenance}
    for kind in values:
        provenance[f"models.{kind}"] = Provenance(source=source, location=f"livekit_available_{kind}_models")
    return AgentConfig.model_validate({**config.model_dump(), "models": models, "provenance": provenance})


def bare(instance: object) -> object:
    """The model a FallbackAdapter entry runs (a non-streaming STT is wrapped in LiveKit's StreamAdapter)."""
    return instance.wrapped_stt if isinstance(instance, stt.StreamAdapter) else instance


async def test_snapshot_choices_build_plugins_with_model_language_and_voice() -> None:
    """With provider keys only, every kind of the shipped snapshot has a plugin primary and an openai backup."""
    config = await snapshot_config()
    s, item, t = (f(config, env=PLUGIN_KEYS) for f in (build_stt, build_llm, build_tts))
    assert isinstance(s, stt.FallbackAdapter) and isinstance(t, tts.FallbackAdapter)
    dg, backup_stt = (bare(i) for i in s._stt_instances)
    assert isinstance(dg, deepgram.STT) and dg.model == "nova-3" and dg._opts.language == "multi"
    assert isinstance(backup_stt, openai.STT) and backup_stt.model == "gpt-4o-mini-transcribe"
    assert isinstance(item, llm.FallbackAdapter)
    assert [(i.model, i.provider) for i in item._llm_instances] == [
        ("gpt-5", "api.openai.com"),
        ("gpt-4.1-mini", "api.openai.com"),
    ]
    el, backup_tts = t._tts_instances
    assert isinstance(el, elevenlabs.TTS) and el.model == "eleven_turbo_v2_5" and el._opts.voice_id == SNAPSHOT_VOICE
    assert isinstance(backup_tts, openai.TTS) and backup_tts._opts.voice == "alloy"


async def test_database_rows_build_plugins_backed_by_the_snapshot(db_resolver) -> None:
    """Rows read from the database become plugins with their model, language and voice, snapshot second."""
    config = await db_resolver.resolve(VERTICAL, "livekit")
    assert {config.provenance[f"models.{k}"].source for k in ("stt", "llm", "tts")} == {Source.DATABASE}
    s, item, t = (
        build_stt(config, env=PLUGIN_KEYS),
        build_llm(config, env=PLUGIN_KEYS),
        build_tts(config, env=PLUGIN_KEYS),
    )
    # conftest seeds deepgram/nova-3:en, openai/gpt-4.1, elevenlabs/eleven_flash_v2_5:21m00Tcm4TlvDq8ikWAM
    dg, backup, dg_snapshot = (bare(i) for i in s._stt_instances)
    assert [(i.model, i._opts.language) for i in (dg, dg_snapshot)] == [("nova-3", "en"), ("nova-3", "multi")]
    assert isinstance(dg, deepgram.STT) and isinstance(backup, openai.STT)
    assert [i.model for i in item._llm_instances] == ["gpt-4.1", "gpt-4.1-mini", "gpt-5"]
    el, backup_tts, el_snapshot = t._tts_instances
    assert [(i.model, i._opts.voice_id) for i in (el, el_snapshot)] == [
        ("eleven_flash_v2_5", "21m00Tcm4TlvDq8ikWAM"),
        ("eleven_turbo_v2_5", SNAPSHOT_VOICE),
    ]
    assert isinstance(el, elevenlabs.TTS) and isinstance(backup_tts, openai.TTS)


async def test_rows_differing_from_snapshot_get_the_snapshot_as_runtime_backup() -> None:
    """Choices unlike the snapshot's (a custom voice too) are wrapped in a FallbackAdapter, configured first."""
    config = with_models(
        await snapshot_config(),
        stt=choice("stt", "deepgram/nova-2-phonecall:en-US"),
        llm=choice("llm", "openai/gpt-4.1"),
        tts=choice("tts", "elevenlabs/eleven_flash_v2_5:customVoice123", is_custom=True),
    )
    s, item, t = (
        build_stt(config, env=PLUGIN_KEYS),
        build_llm(config, env=PLUGIN_KEYS),
        build_tts(config, env=PLUGIN_KEYS),
    )
    assert (
        isinstance(s, stt.FallbackAdapter)
        and isinstance(item, llm.FallbackAdapter)
        and isinstance(t, tts.FallbackAdapter)
    )
    primary, _, backup = (bare(i) for i in s._stt_instances)
    assert (primary.model, primary._opts.language) == ("nova-2-phonecall", "en-US")
    assert (backup.model, backup._opts.language) == ("nova-3", "multi")
    assert [i.model for i in item._llm_instances] == ["gpt-4.1", "gpt-4.1-mini", "gpt-5"] and item.model == "gpt-4.1"
    first, _, last = t._tts_instances
    assert [(i.model, i._opts.voice_id) for i in (first, last)] == [
        ("eleven_flash_v2_5", "customVoice123"),
        ("eleven_turbo_v2_5", SNAPSHOT_VOICE),
    ]
    plain = build_llm(config, env=PLUGIN_KEYS, runtime_fallback=False)
    assert isinstance(plain, openai.LLM) and plain.model == "gpt-4.1"


def test_without_provider_keys_livekit_inference_is_chosen() -> None:
    """No provider key but LiveKit credentials: inference instances from the same descriptor."""
    s = build_model(choice("stt", "deepgram/nova-3:multi"), env=LIVEKIT_KEYS)
    item = build_model(choice("llm", "openai/gpt-5"), env=LIVEKIT_KEYS)
    t = build_model(choice("tts", f"cartesia/sonic-2:{SNAPSHOT_VOICE}"), env=LIVEKIT_KEYS)
    assert s.path == item.path == t.path == "inference"
    assert isinstance(s.instance, inference.STT) and s.instance.model == "deepgram/nova-3"
    assert s.instance._opts.language == "multi"
    assert isinstance(item.instance, inference.LLM) and item.instance.model == "openai/gpt-5"
    assert isinstance(t.instance, inference.TTS) and t.instance.model == "cartesia/sonic-2"
    assert t.instance._opts.voice == SNAPSHOT_VOICE


def test_provider_key_wins_over_inference_and_base_url_alone_selects_openai() -> None:
    """The provider's own key picks the plugin even with LiveKit credentials; OPENAI_BASE_URL alone does too."""
    built = build_model(choice("stt", "deepgram/nova-3:en"), env={**LIVEKIT_KEYS, "DEEPGRAM_API_KEY": "dg"})
    assert built.path == "plugin" and isinstance(built.instance, deepgram.STT)
    local = build_model(choice("llm", "openai/gpt-4.1"), env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert local.path == "plugin" and local.instance.provider == "127.0.0.1:9"


def test_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``env=``, keys come from os.environ at build time."""
    for key in (*PLUGIN_KEYS, *LIVEKIT_KEYS, "OPENAI_BASE_URL", "LIVEKIT_INFERENCE_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ELEVEN_API_KEY", "el-from-env")
    assert build_model(choice("tts", "elevenlabs/eleven_turbo_v2_5:abc")).path == "plugin"
    with pytest.raises(ModelBuildError):
        build_model(choice("stt", "deepgram/nova-3"))


def test_neither_path_is_a_clear_error_naming_both() -> None:
    """No provider key and no LiveKit credentials: ModelBuildError names the choice and both paths."""
    with pytest.raises(ModelBuildError) as caught:
        build_model(choice("llm", "openai/gpt-5"), env={})
    text = str(caught.value)
    assert "LLM model 'openai/gpt-5'" in text
    assert "provider plugin: OPENAI_API_KEY not set" in text
    assert "LiveKit Inference: LIVEKIT_API_KEY/LIVEKIT_API_SECRET" in text
    assert set(caught.value.attempts) == {"provider plugin", "LiveKit Inference"}


def test_unsupported_provider_and_custom_voice_errors() -> None:
    """A provider with no plugin needs Inference; a custom voice needs the plugin; errors say so."""
    with pytest.raises(ModelBuildError, match="no plugin supported for provider 'assemblyai'"):
        build_model(choice("stt", "assemblyai/universal-streaming:en"), env=PLUGIN_KEYS)
    with pytest.raises(ModelBuildError, match="custom voice") as caught:
        build_model(choice("tts", "elevenlabs/eleven_turbo_v2_5:myClone", is_custom=True), env=LIVEKIT_KEYS)
    assert "ELEVEN_API_KEY not set" in str(caught.value)
    with pytest.raises(ValueError, match="not a LiveKit choice"):
        build_model(ModelChoice(kind="llm", platform="signalwire", value="gpt-4.1-mini"))


async def test_unbuildable_choice_falls_back_to_snapshot_with_banner(caplog: pytest.LogCaptureFixture) -> None:
    """A database STT that cannot be built is replaced by the snapshot's, with the STT MODEL banner."""
    config = with_models(await snapshot_config(), stt=choice("stt", "assemblyai/universal-streaming:en"))
    alarms = ModelAlarms(ResolutionState(MemoryStorage(), "snapshot"))
    with caplog.at_level(logging.ERROR, logger="livekit_fallback"):
        built = build_chain(config, "stt", env=PLUGIN_KEYS, alarms=alarms)
        again = build_chain(config, "stt", env=PLUGIN_KEYS, alarms=alarms)
        await alarms.settled()
    assert [m.choice.value for m in built.models] == ["openai/gpt-4o-mini-transcribe:en", "deepgram/nova-3:multi"]
    assert [m.choice.value for m in again.models] == [m.choice.value for m in built.models]
    [record] = [r for r in caplog.records if "STT MODEL" in r.getMessage()]  # the repeat is counted, not bannered
    text = record.getMessage()
    assert "Using fallback STT model 'openai/gpt-4o-mini-transcribe:en' from snapshot taken 2025-11-21" in text
    assert "assemblyai/universal-streaming:en" in text and "Table: livekit_available_stt_models" in text
    assert record.levelno == logging.ERROR and record.fallback_value == "openai/gpt-4o-mini-transcribe:en"


async def test_when_neither_configured_nor_snapshot_builds_the_error_names_both() -> None:
    """Configured and snapshot choices both unbuildable: one error naming both, no secrets in it."""
    config = with_models(await snapshot_config(), llm=choice("llm", "anthropic/claude-sonnet-4"))
    with pytest.raises(ModelBuildError) as caught:
        build_llm(config, env={"DEEPGRAM_API_KEY": "dg-secret-value"})
    text = str(caught.value)
    assert "'anthropic/claude-sonnet-4'" in text and "snapshot's" in text and "'openai/gpt-5'" in text
    assert "dg-secret-value" not in text


def test_plugins_are_registered_at_import_so_worker_threads_can_build() -> None:
    """Importing providers on the main thread registers the plugins; a worker thread can then build them."""
    code = textwrap.dedent(
        """
        import threading
        from livekit.agents import Plugin
        from livekit_fallback.providers import build_model
        from livekit_fallback.config.model import ModelChoice
        names = {p.package for p in Plugin.registered_plugins}
        assert {"livekit.plugins.deepgram", "livekit.plugins.openai", "livekit.plugins.elevenlabs"} <= names, names
        out = []
        c = ModelChoice(kind="tts", platform="livekit", value="elevenlabs/eleven_turbo_v2_5:v")
        t = threading.Thread(target=lambda: out.append(build_model(c, env={"ELEVEN_API_KEY": "x"}).path))
        t.start(); t.join()
        print(out[0])
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "plugin"


def test_snapshot_backup_comes_from_the_users_snapshot_directory(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """build_llm's runtime backup is the model of the snapshot the resolver uses (LIVEKIT_FALLBACK_SNAPSHOT_DIR)."""
    import asyncio

    from livekit.agents import llm as lk_llm

    from livekit_fallback import Resolver
    from livekit_fallback.config.sources.snapshot import default_snapshot_dir
    from livekit_fallback.providers import build_llm

    text = (default_snapshot_dir() / "reverse_mortgage.toml").read_text(encoding="utf-8")
    (tmp_path / "reverse_mortgage.toml").write_text(text.replace('llm = "openai/gpt-5"', 'llm = "openai/gpt-4.1-mini"'))
    for name in ("SUPABASE_URL", "SUPABASE_SERVICE_KEY", "SUPABASE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIVEKIT_FALLBACK_SNAPSHOT_DIR", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")

    async def resolve():  # noqa: ANN202
        async with Resolver.from_settings() as resolver:  # snapshot mode, the user's snapshot: gpt-4.1-mini
            return await resolver.resolve("reverse_mortgage")

    config = with_models(asyncio.run(resolve()), llm=choice("llm", "openai/gpt-5"))  # as if read from the database
    built = build_llm(config)
    assert isinstance(built, lk_llm.FallbackAdapter)
    assert [child.model for child in built._llm_instances] == ["gpt-5", "gpt-4.1-mini"]
