"""What vendor JavaScript codecs may take of a worker, together: the cached codecs' runtimes hold
at most a memory budget (measured, least recently used out first), and each codec may spend at
most its CPU budget per second, past which its calls are refused at once (codec_throttled) until
the budget refills, without touching other codecs."""

from __future__ import annotations

import gc
import re
import time
from pathlib import Path

import pytest

from devices.codecs.javascript import JsCodecCache, JsCodecLimits
from devices.profile_codecs import js_codec_limits
from pilotlab.errors import JsCodecError, JsCodecFailure
from pilotlab.settings import Settings
from tests.codecs.busy_codec import busy_codec

MIB = 1024 * 1024

# Holds `size` bytes from its load on (an ArrayBuffer: QuickJS takes it from malloc, as the budget counts)
HOLDING = """
var table = new Uint8Array({size});
for (var i = 0; i < table.length; i += 4096) table[i] = i & 0xff;
function decodeUplink(input) {{ return {{data: {{v: table[4096 * input.bytes[0]], n: {n}}}}}; }}
"""
# Keeps 256 KiB more with every frame
GROWING = """
var kept = [];
function decodeUplink(input) { kept.push(new Uint8Array(256 * 1024).fill(1)); return {data: {frames: kept.length}}; }
"""
CHEAP = "function decodeUplink(input) { return {data: {t: input.bytes[0]}}; }"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _throttled(call) -> JsCodecError:
    with pytest.raises(JsCodecError) as caught:
        call()
    assert caught.value.reason is JsCodecFailure.THROTTLED, caught.value
    return caught.value


# --- memory ---------------------------------------------------------------------------------------

def test_the_cached_codecs_hold_at_most_the_memory_budget_and_the_least_recently_used_go_first() -> None:
    cache = JsCodecCache(JsCodecLimits(cache_memory_bytes=10 * MIB))
    cache.decode("small", CHEAP, b"\x01", 1)
    small = cache.memory_bytes
    assert small < 256 * 1024
    for n in range(8):
        cache.decode(("big", n), HOLDING.format(size=2 * MIB, n=n), b"\x00", 1)
        cache.decode("small", CHEAP, b"\x01", 1)  # used between each: stays
        assert cache.memory_bytes <= 10 * MIB
    # each big codec counts its 2 MiB: four of them fit beside the small one, not five
    assert len(cache) == 5
    assert 4 * 2 * MIB < cache.memory_bytes <= 10 * MIB
    assert cache.codec("small", "cached, not compiled") is not None
    assert cache.codec(("big", 7), "cached, not compiled") is not None
    for evicted in range(4):
        with pytest.raises(JsCodecError):
            cache.codec(("big", evicted), "evicted, so this is compiled")


def test_a_codec_that_keeps_more_with_every_frame_is_counted_within_16_frames_and_pushes_the_others_out() -> None:
    cache = JsCodecCache(JsCodecLimits(cache_memory_bytes=8 * MIB, memory_limit_bytes=16 * MIB))
    for n in range(4):
        cache.decode(("holding", n), HOLDING.format(size=MIB, n=n), b"\x00", 1)
    assert len(cache) == 4 and cache.memory_bytes > 4 * MIB
    for frame in range(1, 25):  # 256 KiB more each
        assert cache.decode("growing", GROWING, b"", 1).data == {"frames": frame}
        assert cache.memory_bytes <= 8 * MIB + 16 * 256 * 1024
    # 24 frames later it holds 6 MiB itself, counted: room for at most one holding codec beside it
    assert len(cache) <= 2
    assert 6 * MIB < cache.memory_bytes <= 8 * MIB


def test_loading_many_codecs_that_allocate_keeps_the_process_within_the_budget() -> None:
    gc.collect()
    before = _rss_mb()
    cache = JsCodecCache(JsCodecLimits(cache_memory_bytes=16 * MIB))
    for n in range(40):  # 80 MiB of codecs, unbounded
        cache.decode(("big", n), HOLDING.format(size=2 * MIB, n=n), b"\x01", 1)
    gc.collect()
    assert cache.memory_bytes <= 16 * MIB
    assert _rss_mb() - before < 40, f"RSS grew {_rss_mb() - before:.0f} MB"


# --- CPU ------------------------------------------------------------------------------------------

def test_a_codec_past_its_cpu_budget_is_refused_at_once_and_works_again_once_it_has_refilled() -> None:
    cache = JsCodecCache(JsCodecLimits(time_limit_s=0.05, cpu_budget_ms_per_s=100))  # bucket: 100 ms
    calls, spent, longest = 0, 0.0, 0.0
    started = time.perf_counter()
    while calls < 20:
        cpu_before = time.thread_time()
        try:
            cache.decode("slow", busy_codec(), b"\x14", 1)  # ~20 ms of CPU each (more on a busy machine)
        except JsCodecError as exc:
            assert exc.reason is JsCodecFailure.THROTTLED
            break
        took = time.thread_time() - cpu_before
        calls, spent, longest = calls + 1, spent + took, max(longest, took)
    refilled = 0.1 * (time.perf_counter() - started)
    # the bucket's 100 ms plus what it refilled meanwhile, less the 1.5 calls' worth a call needs to be let in
    assert calls >= 2
    assert 0.1 - 1.5 * longest - 0.005 <= spent <= 0.1 + refilled + longest, (calls, spent, longest)
    cpu_before = time.thread_time()
    error = _throttled(lambda: cache.decode("slow", busy_codec(), b"\x14", 1))
    assert time.thread_time() - cpu_before < 0.005  # refused without running
    assert re.fullmatch(r"CPU budget of 100 ms per second spent \(its calls take \d+\.\d ms\); refused for \d+ ms more",
                        error.detail), error.detail
    # another codec in the same cache has a budget of its own
    assert cache.decode("cheap", CHEAP, b"\x07", 1).data == {"t": 7}
    time.sleep(15 * longest + 0.05)  # refilled at 100 ms/s: room for one more call (1.5 calls' worth)
    assert cache.decode("slow", busy_codec(), b"\x14", 1).data["frames"] == calls + 1


def test_a_call_longer_than_the_rest_of_the_budget_is_stopped_there_as_throttled_and_loaded_afresh() -> None:
    cache = JsCodecCache(JsCodecLimits(time_limit_s=0.1, cpu_budget_ms_per_s=100))  # bucket: 200 ms
    assert cache.decode("varying", busy_codec(), b"\x01", 1).data["frames"] == 1
    budget = cache.budget("varying")
    budget.spend(budget.capacity - 0.06)  # 60 ms left
    cpu_before = time.process_time()  # the clock the time limit runs on
    error = _throttled(lambda: cache.decode("varying", busy_codec(), b"\x96", 1))  # 150 ms
    assert time.process_time() - cpu_before < 0.09  # stopped before the per-call time limit
    assert re.fullmatch(r"stopped after [56]\d ms, the rest of its CPU budget of 100 ms per second", error.detail), error.detail
    time.sleep(0.2)
    assert cache.decode("varying", busy_codec(), b"\x01", 1).data["frames"] == 1  # fresh globals


def test_a_codec_that_always_runs_into_its_time_limit_is_held_to_its_budget() -> None:
    cache = JsCodecCache(JsCodecLimits(time_limit_s=0.05, cpu_budget_ms_per_s=100))  # bucket: 100 ms
    endless = "function decodeUplink(i) { while (true) {} }"
    ran = 0.0  # CPU the calls that ran took before they were stopped
    refused = 0
    started = time.perf_counter()
    while time.perf_counter() - started < 1.0:
        cpu_before = time.thread_time()
        try:
            cache.decode("endless", endless, b"", 1)
        except JsCodecError as exc:
            if exc.reason is JsCodecFailure.TIMEOUT or exc.detail.startswith("stopped after"):
                ran += time.thread_time() - cpu_before
            else:
                assert exc.reason is JsCodecFailure.THROTTLED
                refused += 1
        time.sleep(0.002)
    # the full bucket and what refilled over the second: about 200 ms of CPU, not a whole core
    assert 0.12 <= ran <= 0.3, ran
    assert refused > 50


def test_the_budgets_are_settings_of_the_one_settings_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PILOTLAB_JS_CODEC_CACHE_MEMORY_MB", "64")
    monkeypatch.setenv("PILOTLAB_JS_CODEC_CPU_BUDGET_MS_PER_S", "250")
    limits = js_codec_limits(Settings())
    assert (limits.cache_memory_bytes, limits.cpu_budget_ms_per_s) == (64 * MIB, 250.0)
    defaults = JsCodecLimits()
    monkeypatch.delenv("PILOTLAB_JS_CODEC_CACHE_MEMORY_MB")
    monkeypatch.delenv("PILOTLAB_JS_CODEC_CPU_BUDGET_MS_PER_S")
    assert js_codec_limits(Settings()) == defaults
