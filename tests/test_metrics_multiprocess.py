"""Metrics in a multi-process worker: one aggregate, no series left behind per finished call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CALL = """
import sys
from livekit_fallback import metrics
vertical, value = sys.argv[1], float(sys.argv[2])
metrics.DEGRADED.labels(vertical, "livekit", "models.llm").set(value)
metrics.BREAKER_STATE.set(value)
metrics.FALLBACKS.labels("models.llm", "livekit", "snapshot", "timeout").inc()
"""

SCRAPE = """
from livekit_fallback import metrics
print(metrics.render().decode())
"""

SERVER = """
from livekit_fallback import metrics
try:
    metrics.start_metrics_server(0)
except metrics.MetricsServerError as exc:
    print("refused:", exc)
"""


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def _env(directory: Path) -> dict[str, str]:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    return env


def test_finished_calls_leave_one_series_per_label_set(tmp_path: Path) -> None:
    """Five call processes that set the degraded gauge leave one series for it, holding the latest value."""
    env = _env(tmp_path)
    for value in (1, 1, 1, 1, 0):
        _python(CALL, "reverse_mortgage", str(value), env=env)
    text = _python(SCRAPE, env=env)
    degraded = [line for line in text.splitlines() if line.startswith("livekit_fallback_degraded{")]
    assert degraded == [
        'livekit_fallback_degraded{component="models.llm",platform="livekit",vertical="reverse_mortgage"} 0.0'
    ]
    assert [line for line in text.splitlines() if line.startswith("livekit_fallback_breaker_state")] == [
        "livekit_fallback_breaker_state 0.0"
    ]
    fallbacks = [line for line in text.splitlines() if line.startswith("livekit_fallback_fallbacks_total{")]
    assert len(fallbacks) == 1 and fallbacks[0].endswith(" 5.0"), "counters are summed across processes"


def test_a_metrics_server_inside_a_job_process_is_refused(tmp_path: Path) -> None:
    """start_metrics_server in multiprocess mode fails with a message naming the worker's own server."""
    out = _python(SERVER, env=_env(tmp_path))
    assert out.startswith("refused:") and "prometheus_port" in out
