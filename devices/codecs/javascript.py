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
per (profile id, profile version), least recently used first out; a codec that fails to load is
remembered too, so a broken upload costs one compile, not one per message.

The time limit is measured by the binding on the process's CPU clock, so under load from other
threads a codec is stopped early rather than late.
"""

from __future__ import annotations

import threading
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
    cache_size: int = 256                # compiled codecs kept (one per profile version)


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


class JsCodec:
    """One vendor codec loaded into a runtime of its own; `decode` may be called from any thread."""

    def __init__(self, source: str, limits: JsCodecLimits | None = None) -> None:
        self.limits = limits or JsCodecLimits()
        self._lock = threading.Lock()
        self._context = quickjs.Context()
        self._context.set_time_limit(self.limits.time_limit_s)
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
        loaded = int(self._context.memory()["memory_used_size"])
        self._context.set_memory_limit(loaded + self.limits.memory_limit_bytes)
        self.broken = False  # set once a limit stopped a call: the owner should load it afresh

    def _entry_form(self) -> str:
        for name in _ENTRY_POINTS:
            if self._context.eval(f"typeof {name}") == "function":
                return name
        raise JsCodecError(JsCodecFailure.MISSING_ENTRY_POINT,
                           "the codec defines no function decodeUplink(input), Decoder(bytes, port) or Decode(fPort, bytes, variables)")

    def decode(self, data: bytes, f_port: int | None, recv_time: datetime | None = None,
               variables: Mapping[str, str] | None = None) -> DecodedUplink:
        """The codec's data and warnings for one uplink; JsCodecError with the reason otherwise."""
        payload: dict[str, Any] = {"bytes": list(data), "fPort": f_port, "variables": dict(variables or {})}
        if recv_time is not None:
            payload["recvTime"] = recv_time.isoformat()
        with self._lock:
            try:
                text = self._call(orjson.dumps(payload).decode())
            except quickjs.JSException as exc:
                failure = _failure(exc)
                if failure.reason is not JsCodecFailure.THREW:
                    self.broken = True
                raise failure from None
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
    """Compiled codecs per key (profile id, profile version), at most `limits.cache_size` of them."""

    def __init__(self, limits: JsCodecLimits | None = None) -> None:
        self.limits = limits or JsCodecLimits()
        self._lock = threading.Lock()
        self._codecs: OrderedDict[Hashable, JsCodec | JsCodecError] = OrderedDict()

    def __len__(self) -> int:
        return len(self._codecs)

    def codec(self, key: Hashable, source: str) -> JsCodec:
        """The compiled codec of `key` (compiling `source` on a miss); the load error if it has one."""
        with self._lock:
            found = self._codecs.get(key)
            if found is not None:
                self._codecs.move_to_end(key)
        if found is None:
            try:
                found = JsCodec(source, self.limits)
            except JsCodecError as exc:
                found = exc
            with self._lock:
                self._codecs[key] = found
                while len(self._codecs) > self.limits.cache_size:
                    self._codecs.popitem(last=False)
        if isinstance(found, JsCodecError):
            raise JsCodecError(found.reason, found.detail)
        return found

    def decode(self, key: Hashable, source: str, data: bytes, f_port: int | None,
               recv_time: datetime | None = None, variables: Mapping[str, str] | None = None) -> DecodedUplink:
        codec = self.codec(key, source)
        try:
            return codec.decode(data, f_port, recv_time, variables)
        finally:
            if codec.broken:
                with self._lock:
                    if self._codecs.get(key) is codec:
                        del self._codecs[key]
