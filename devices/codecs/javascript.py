"""Vendor JavaScript payload codecs, uploaded unchanged, run in an embedded sandboxed QuickJS.

The forms of The Things Network's LoRaWAN Device Repository and ChirpStack are recognised, first
found wins:

    decodeUplink(input)              input {bytes, fPort, recvTime, variables} → {data, warnings, errors}
    Decoder(bytes, port)             older TTN (v2) form → the data object
    Decode(fPort, bytes, variables)  ChirpStack v3 form → the data object

`bytes` is a plain Array of numbers, `recvTime` a Date, `variables` an object of strings, as the
network servers pass them. A codec is ES2020 in non-strict global code (QuickJS), so ES5 and
ES2015 files, `var` hoisting, helper functions, typed arrays and a plain call's `this` work as
they do in the network servers; `console.*` exists and does nothing. Each codec gets a QuickJS
runtime of its own: nothing of the host is reachable (no require, no module loader, no file,
process or network object), and one codec cannot see another's globals.

Per call a codec has a time limit (an uncatchable interrupt), a heap limit above what the loaded
codec itself holds, and a stack limit. Every failure is a `JsCodecError` with a reason from
`JsCodecFailure` and the codec's own message. A codec stopped by a limit is unloaded (its globals
may be half-changed) and compiled afresh for the next call. `JsCodecCache` keeps compiled codecs
per key (profile id, version, fPort), least recently used first out, within a count and a total
of their runtimes' measured memory; a codec that fails to load is remembered too, so a broken
upload costs one compile, not one per message.

Through the cache each codec also has a CPU budget per second (`CpuBudget`), so one slow codec
cannot take a worker's time from every other device: past it a call is refused at once
(`codec_throttled`) until the budget has refilled.

The time limit is measured by the binding on the process's CPU clock, so under load from other
threads a codec is stopped early rather than late. The binding releases the GIL while a codec
runs.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import quickjs

from pilotlab.errors import JsCodecError, JsCodecFailure


@dataclass(frozen=True)
class JsCodecLimits:
    """What one call of a codec may use (settings-ready: plain values with defaults)."""

    time_limit_s: float = 0.1            # ChirpStack's default max execution time is 100 ms
    memory_limit_bytes: int = 16 * 1024 * 1024  # heap a call may add to the loaded codec's
    # QuickJS checks its stack against this bound, not against the thread's real stack: keep it
    # well under the smallest stack of a thread that decodes (8 MiB by default on Linux).
    stack_limit_bytes: int = 256 * 1024
    cache_size: int = 256                # compiled codecs kept (one per profile version and fPort)
    # What the cached codecs' runtimes may hold together, as measured between calls: without it,
    # 256 codecs each allowed 16 MiB above their load would be 4 GiB
    cache_memory_bytes: int = 128 * 1024 * 1024
    # CPU each codec may spend, averaged over a second (CpuBudget): half a core, so a slow codec
    # leaves a worker half its time, while a fast one shared by a whole fleet (10-20 µs a call at a
    # worker's 10,000-17,000 msg/s: 100-340 ms a second) is never refused
    cpu_budget_ms_per_s: float = 500.0


class DecodedUplink(NamedTuple):
    data: dict[str, Any]
    warnings: list[str]


_ENTRY_POINTS = ("decodeUplink", "Decoder", "Decode")

# Before the codec: what the network servers' engines also give (a console that goes nowhere).
_PRELUDE = """
var console = (function () {
  function none() {}
  return {log: none, info: none, warn: none, error: none, debug: none, trace: none};
})();
"""

# Before the codec: the builtins the call needs, taken as they are, so a codec replacing JSON or
# Date breaks only itself. The factory gives one entry taking and returning JSON text.
_ADAPTER = """
(function (parse, stringify, DateCtor) {
  return function (entry, form) { return function (json) {
    var input = parse(json);
    var result;
    if (form === "decodeUplink") {
      if (input.recvTime !== undefined) input.recvTime = new DateCtor(input.recvTime);
      result = entry(input);
    } else if (form === "Decoder") {
      result = entry(input.bytes, input.fPort);
    } else {
      result = entry(input.fPort, input.bytes, input.variables);
    }
    if (result === null || typeof result !== "object" || Array.isArray(result)) {
      return "!" + (result === null ? "null" : Array.isArray(result) ? "an array" : typeof result);
    }
    return stringify(result);
  }; };
})(JSON.parse, JSON.stringify, Date)
"""


def _message(exc: Exception) -> str:
    """The JavaScript error's first line (the binding appends the JS stack)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _failure(exc: Exception) -> JsCodecError:
    message = _message(exc)
    if isinstance(exc, quickjs.StackOverflow) or message == "InternalError: stack overflow":
        return JsCodecError(JsCodecFailure.MEMORY, f"stack limit reached ({message})")
    if message == "InternalError: interrupted":
        return JsCodecError(JsCodecFailure.TIMEOUT, "time limit reached")
    if message == "InternalError: out of memory":
        return JsCodecError(JsCodecFailure.MEMORY, "heap limit reached")
    return JsCodecError(JsCodecFailure.THREW, message)


class CpuBudget:
    """The time one codec may spend, `per_s` seconds each second on average: a token bucket that
    refills at that rate up to one second's worth, and at least two calls cut at their time limit
    (so one runaway frame does not get the codec's next frame refused).

    A call is let in only while the bucket holds half again what this codec's completed calls take
    (the longest recent one, decaying by a tenth per call), so a slow codec runs now and then to
    completion instead of being cut short every time; its time limit is what the bucket holds, at
    most `call_limit_s`. Calls are timed on their thread's CPU clock (1.5 µs a call): the wall
    clock would charge a fast codec for the GIL it waits for after the call (up to the switch
    interval) and for the core the machine gave to others. Loading a codec again after a limit
    stopped it is spent from its bucket too, else a codec cut short every call would load for free.
    """

    def __init__(self, per_s: float, call_limit_s: float) -> None:
        self.per_s = per_s
        self.call_limit_s = call_limit_s
        self.capacity = max(per_s, 2 * call_limit_s)
        self._left = self.capacity
        self._at = time.monotonic()
        self._call_s = 0.0
        # No lock of its own (one would cost a tenth of a cached call): it is used under its codec's
        # lock, and only a codec being loaded again while its old runtime still runs shares it,
        # where a lost update errs by one call.

    def _refill(self) -> float:
        now = time.monotonic()
        left = self._left + (now - self._at) * self.per_s
        self._left = left = left if left < self.capacity else self.capacity
        self._at = now
        return left

    @property
    def full(self) -> bool:
        return self._refill() >= self.capacity

    def admit(self) -> float:
        """The next call's time limit; JsCodecError codec_throttled if the budget cannot cover it."""
        left = self._refill()
        needed = 1.5 * self._call_s
        if needed > self.call_limit_s:
            needed = self.call_limit_s
        if left > 0 and left >= needed:
            return left if left < self.call_limit_s else self.call_limit_s
        wait_ms = (max(needed, 1e-6) - left) / self.per_s * 1000
        raise JsCodecError(JsCodecFailure.THROTTLED,
                           f"CPU budget of {self.per_s * 1000:g} ms per second spent (its calls take "
                           f"{self._call_s * 1000:.1f} ms); refused for {wait_ms:.0f} ms more")

    def spend(self, seconds: float) -> None:
        self._left -= seconds

    def called(self, seconds: float, completed: bool) -> None:
        """A call took `seconds`; only a `completed` one (not stopped by a limit) says what the
        codec's calls take."""
        self._left -= seconds
        if completed:
            decayed = self._call_s * 0.9
            self._call_s = seconds if seconds > decayed else decayed


# A codec's runtime is measured (6.7 µs, as long as a cached call) after every this-many calls,
# and after each call while it grows by more than _GROWING between measurements, so what it
# keeps is counted within 16 calls (it can never pass its heap limit)
_MEASURE_EVERY = 16
_GROWING = 64 * 1024


class JsCodec:
    """One vendor codec loaded into a runtime of its own; `decode` may be called from any thread."""

    def __init__(self, source: str, limits: JsCodecLimits | None = None) -> None:
        self.limits = limits or JsCodecLimits()
        self._lock = threading.Lock()
        self._context = quickjs.Context()
        self._time_limit_s = self.limits.time_limit_s
        self._context.set_time_limit(self._time_limit_s)
        self._context.set_max_stack_size(self.limits.stack_limit_bytes)
        self._context.set_memory_limit(self.limits.memory_limit_bytes)
        try:
            self._context.eval(_PRELUDE)
            adapter = self._context.eval(_ADAPTER)
            self._context.eval(source)
            self.form = self._entry_form()
            self._call = adapter(self._context.get(self.form), self.form)
        except quickjs.JSException as exc:
            raise _failure(exc) from None
        self._context.gc()
        # QuickJS checks its limit against the bytes it has from malloc (malloc_size)
        self.memory_bytes = self._measure()
        self._context.set_memory_limit(self.memory_bytes + self.limits.memory_limit_bytes)
        self._calls = 0
        self._measure_every = _MEASURE_EVERY
        self.broken = False  # set once a limit stopped a call: the owner should load it afresh

    def _measure(self) -> int:
        return int(self._context.memory()["malloc_size"])

    def _entry_form(self) -> str:
        for name in _ENTRY_POINTS:
            if self._context.eval(f"typeof {name}") == "function":
                return name
        raise JsCodecError(JsCodecFailure.MISSING_ENTRY_POINT,
                           "the codec defines no function decodeUplink(input), Decoder(bytes, port) or Decode(fPort, bytes, variables)")

    def decode(self, data: bytes, f_port: int | None, recv_time: datetime | None = None,
               variables: Mapping[str, str] | None = None, budget: CpuBudget | None = None) -> DecodedUplink:
        """The codec's data and warnings for one uplink; JsCodecError with the reason otherwise.
        With a `budget`, the call must fit in it (else codec_throttled) and is spent from it;
        `memory_bytes` is brought up to date now and then."""
        payload: dict[str, Any] = {"bytes": list(data), "fPort": f_port, "variables": dict(variables or {})}
        if recv_time is not None:
            payload["recvTime"] = recv_time.isoformat()
        text = orjson.dumps(payload).decode()
        with self._lock:
            limit = self.limits.time_limit_s if budget is None else budget.admit()
            if limit != self._time_limit_s:
                self._context.set_time_limit(limit)
                self._time_limit_s = limit
            stopped = False
            started = 0.0 if budget is None else time.thread_time()
            try:
                text = self._call(text)
            except quickjs.JSException as exc:
                failure = _failure(exc)
                stopped = failure.reason is not JsCodecFailure.THREW
                self.broken = self.broken or stopped
                if failure.reason is JsCodecFailure.TIMEOUT and budget is not None and limit < self.limits.time_limit_s:
                    failure = JsCodecError(JsCodecFailure.THROTTLED, f"stopped after {limit * 1000:.0f} ms, the rest of "
                                           f"its CPU budget of {budget.per_s * 1000:g} ms per second")
                raise failure from None
            finally:
                if budget is not None:
                    budget.called(time.thread_time() - started, not stopped)
                self._calls += 1
                if not stopped and self._calls % self._measure_every == 0:
                    measured = self._measure()
                    self._measure_every = 1 if measured - self.memory_bytes > _GROWING else _MEASURE_EVERY
                    self.memory_bytes = measured
        if not isinstance(text, str):
            raise JsCodecError(JsCodecFailure.BAD_RESULT, f"{self.form} returned something JSON cannot hold")
        if text.startswith("!"):
            raise JsCodecError(JsCodecFailure.BAD_RESULT, f"{self.form} returned {text[1:]}, not an object")
        result = orjson.loads(text)
        if self.form != "decodeUplink":
            return DecodedUplink(result, [])
        errors = result.get("errors")
        if errors:
            listed = errors if isinstance(errors, list) else [errors]
            raise JsCodecError(JsCodecFailure.ERRORS, "; ".join(str(item) for item in listed))
        found = result.get("data")
        if not isinstance(found, dict):
            raise JsCodecError(JsCodecFailure.BAD_RESULT, "decodeUplink returned no data object"
                               + ("" if found is None else f" (data is {type(found).__name__})"))
        warnings = result.get("warnings") or []
        return DecodedUplink(found, [str(item) for item in (warnings if isinstance(warnings, list) else [warnings])])


class JsCodecCache:
    """Compiled codecs per key (profile id, version, fPort): at most `limits.cache_size` of them,
    holding at most `limits.cache_memory_bytes` together by their runtimes' measured memory (the
    one just used stays, even alone above it), least recently used out first; each key with its
    CPU budget, kept across reloads and evictions until it has refilled."""

    def __init__(self, limits: JsCodecLimits | None = None) -> None:
        self.limits = limits or JsCodecLimits()
        self._lock = threading.Lock()
        self._codecs: OrderedDict[Hashable, JsCodec | JsCodecError] = OrderedDict()
        self._held: dict[Hashable, int] = {}  # bytes each cached codec was last counted at
        self.memory_bytes = 0                 # their sum
        self._budgets: dict[Hashable, CpuBudget] = {}
        self._stopped: set[Hashable] = set()  # keys whose codec a limit stopped: their next load is spent

    def __len__(self) -> int:
        return len(self._codecs)

    def budget(self, key: Hashable) -> CpuBudget:
        """The CPU budget of `key` (a new, full one if it has none)."""
        found = self._budgets.get(key)
        if found is None:
            with self._lock:
                found = self._budgets.setdefault(key, CpuBudget(self.limits.cpu_budget_ms_per_s / 1000,
                                                                self.limits.time_limit_s))
        return found

    def codec(self, key: Hashable, source: str) -> JsCodec:
        """The compiled codec of `key` (compiling `source` on a miss); the load error if it has one."""
        with self._lock:
            found = self._codecs.get(key)
            if found is not None:
                self._codecs.move_to_end(key)
        if found is None:
            started = time.thread_time()
            try:
                found = JsCodec(source, self.limits)
            except JsCodecError as exc:
                found = exc
            if key in self._stopped:
                self.budget(key).spend(time.thread_time() - started)
            with self._lock:
                self._stopped.discard(key)
                self._forget(key)
                self._codecs[key] = found
                self._count(key, found)
        if isinstance(found, JsCodecError):
            raise JsCodecError(found.reason, found.detail)
        return found

    def decode(self, key: Hashable, source: str, data: bytes, f_port: int | None,
               recv_time: datetime | None = None, variables: Mapping[str, str] | None = None) -> DecodedUplink:
        codec = self.codec(key, source)
        try:
            return codec.decode(data, f_port, recv_time, variables, self.budget(key))
        finally:
            if codec.broken or codec.memory_bytes != self._held.get(key):
                with self._lock:
                    if self._codecs.get(key) is codec:
                        if codec.broken:
                            self._forget(key)
                            self._stopped.add(key)
                        else:
                            self._count(key, codec)

    def _count(self, key: Hashable, entry: JsCodec | JsCodecError) -> None:
        """Count `entry`'s memory as `key`'s, then evict down to the bounds (under the lock)."""
        held = entry.memory_bytes if isinstance(entry, JsCodec) else 0
        self.memory_bytes += held - self._held.get(key, 0)
        self._held[key] = held
        while len(self._codecs) > 1 and (len(self._codecs) > self.limits.cache_size
                                         or self.memory_bytes > self.limits.cache_memory_bytes):
            oldest = next(iter(self._codecs))
            if oldest == key:
                self._codecs.move_to_end(key)
                continue
            self._forget(oldest)
            budget = self._budgets.get(oldest)
            if budget is not None and budget.full:
                del self._budgets[oldest]
        if len(self._budgets) > 2 * self.limits.cache_size:  # budgets of evicted codecs, refilled since
            for stale in [k for k, b in self._budgets.items() if k not in self._codecs and b.full]:
                del self._budgets[stale]
                self._stopped.discard(stale)

    def _forget(self, key: Hashable) -> None:
        """Drop `key`'s codec and its memory from the count (under the lock)."""
        self._codecs.pop(key, None)
        self.memory_bytes -= self._held.pop(key, 0)
