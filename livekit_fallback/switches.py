"""Mid-call model switches of a ``FallbackAdapter``: counted per event, logged once per incident per machine.

A model that fails mid-call fails in every call process that uses it. Each
switch and each recovery is counted in the metrics where it happens; the
log lines go through the deployment's state
(:class:`~livekit_fallback.config.model_alarms.ModelAlarms`): the first switch
away from a model logs one ERROR on the whole machine, later ones a counted
line per interval, and the first call that sees the model back logs one
recovery line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import metrics
from .config.model import AgentConfig, ModelKind
from .config.model_alarms import ModelAlarms

__all__ = ["watch_switches"]


def watch_switches(
    adapter: Any, kind: ModelKind, names: Mapping[int, str], config: AgentConfig, alarms: ModelAlarms
) -> None:
    """Count and report every mid-call move of ``adapter``, and every recovery.

    Args:
        adapter: A LiveKit ``FallbackAdapter`` of one model kind.
        kind: ``stt``, ``llm`` or ``tts``.
        names: ``id(instance)`` to the name a model is reported under.
        config: The call's config (its vertical and platform key the incidents).
        alarms: Where the lines go.
    """
    instances: list[Any] = list(getattr(adapter, f"_{kind}_instances", []))
    # LiveKit wraps a non-streaming STT in a StreamAdapter: name the wrapper after the model it runs.
    wrapped = {id(i): getattr(i, "wrapped_stt", i) for i in instances}
    names = {**names, **{key: names[id(model)] for key, model in wrapped.items() if id(model) in names}}

    def changed(event: Any) -> None:
        instance = getattr(event, kind)
        name = names.get(id(instance), getattr(instance, "model", "?"))
        if event.available:
            metrics.MODEL_RECOVERIES.labels(kind, name).inc()
            alarms.runtime_recovered(config.vertical, config.platform, kind, name)
            return
        target = _next_available(adapter, instances, instance)
        to = names.get(id(target), "none") if target is not None else "none"
        metrics.MODEL_SWITCHES.labels(kind, name, to).inc()
        alarms.runtime_failed(config.vertical, config.platform, kind, name, to)

    adapter.on(f"{kind}_availability_changed", changed)


def _next_available(adapter: Any, instances: list[Any], failed: Any) -> Any:
    """The instance the adapter tries next: the first one still marked available."""
    statuses = list(getattr(adapter, "_status", []))
    for position, instance in enumerate(instances):
        available = getattr(statuses[position], "available", True) if position < len(statuses) else True
        if instance is not failed and available:
            return instance
    return None
