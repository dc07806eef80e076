"""The JavaScript codec engine: the payload-codec forms, the language the vendor files use, the
sandbox, and hostile codecs stopped by their limits with a reason while the next call works."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from devices.codecs.javascript import JsCodec, JsCodecCache, JsCodecLimits
from pilotlab.errors import CodecError, JsCodecError, JsCodecFailure

# A CPU budget of a whole core per codec: these tests run hostile codecs to their limits back to
# back, and the budget (tests/codecs/test_js_codec_budgets.py) would refuse the second in a row
LIMITS = JsCodecLimits(time_limit_s=0.1, memory_limit_bytes=8 * 1024 * 1024, cpu_budget_ms_per_s=1000)

GOOD = """
function decodeUplink(input) {
  return {data: {temperature: ((input.bytes[0] << 8) | input.bytes[1]) / 10, port: input.fPort}, warnings: []};
}
"""


def fails_with(reason: JsCodecFailure, call) -> JsCodecError:
    with pytest.raises(JsCodecError) as caught:
        call()
    assert caught.value.reason is reason, caught.value
    return caught.value


def test_decode_uplink_form_gets_bytes_port_time_and_variables_and_returns_data_and_warnings() -> None:
    codec = JsCodec("""
    function decodeUplink(input) {
      return {data: {sum: input.bytes.reduce(function (a, b) { return a + b; }, 0), port: input.fPort,
                     year: input.recvTime.getUTCFullYear(), isArray: Array.isArray(input.bytes),
                     site: input.variables.site},
              warnings: ["low battery"]};
    }""", LIMITS)
    decoded = codec.decode(b"\x01\x02\x03", 7, datetime(2026, 5, 1, tzinfo=UTC), {"site": "north"})
    assert decoded.data == {"sum": 6, "port": 7, "year": 2026, "isArray": True, "site": "north"}
    assert decoded.warnings == ["low battery"]
    assert codec.form == "decodeUplink"


def test_older_ttn_decoder_and_chirpstack_v3_decode_forms_return_the_data_object() -> None:
    ttn = JsCodec("function Decoder(bytes, port) { return {first: bytes[0], port: port}; }", LIMITS)
    assert ttn.decode(b"\x09", 3).data == {"first": 9, "port": 3}
    chirpstack = JsCodec("function Decode(fPort, bytes, variables) { return {n: bytes.length, port: fPort, v: variables.k}; }", LIMITS)
    assert chirpstack.decode(b"\x01\x02", 4, variables={"k": "x"}).data == {"n": 2, "port": 4, "v": "x"}


def test_a_codec_in_the_language_of_the_repository_files_runs_unchanged() -> None:
    # What TTN's lorawan-devices codecs use: hoisting, helpers, typed arrays, DataView, switch,
    # closures, String.fromCharCode, Math, JSON, non-strict `this`, ES2015 let/const/arrows/classes.
    codec = JsCodec(r"""
    function decodeUplink(input) {
      var out = {};
      out.hoisted = typeof later;           // var hoisting: declared below
      var later = 1;
      out.temp = readInt16BE(input.bytes, 0) / 100;
      var view = new DataView(new Uint8Array(input.bytes).buffer);
      out.viewTemp = view.getInt16(0, false) / 100;
      out.float = Math.round(new Float32Array(new Uint8Array([0, 0, 0xc0, 0x3f]).buffer)[0] * 10) / 10;
      out.text = String.fromCharCode.apply(null, input.bytes.slice(2, 4));
      switch (input.fPort) { case 1: out.kind = "env"; break; default: out.kind = "other"; }
      var counter = makeCounter(); counter(); out.count = counter();
      out.json = JSON.parse(JSON.stringify({a: [1, 2]})).a.length;
      out.sloppyThis = (function () { return this === globalThis; })();
      undeclared = 5; out.implicitGlobal = undeclared;   // non-strict: implicit global
      const hex = input.bytes.map(b => ("0" + b.toString(16)).slice(-2)).join("");
      let [first, ...rest] = input.bytes; out.rest = rest.length; out.hex = hex;
      class Point { constructor(x) { this.x = x; } get double() { return this.x * 2; } }
      out.cls = new Point(first).double;
      out.template = `t=${out.temp}`;
      out.max = Math.max.apply(Math, input.bytes);
      out.hexParse = parseInt("ff", 16);
      out.pow = Math.pow(2, 10) + (2 ** 3);
      out.date = new Date(0).toISOString();
      out.octal = 010;      // legacy octal literal, allowed only in sloppy mode
      return {data: out, warnings: [], errors: []};
    }
    function readInt16BE(bytes, i) { var v = (bytes[i] << 8) | bytes[i + 1]; return v > 0x7fff ? v - 0x10000 : v; }
    function makeCounter() { var n = 0; return function () { n += 1; return n; }; }
    """, LIMITS)
    data = codec.decode(bytes([0xFF, 0x38, 0x41, 0x42, 0x10]), 1).data
    assert data == {"hoisted": "undefined", "temp": -2.0, "viewTemp": -2.0, "float": 1.5, "text": "AB", "kind": "env",
                    "count": 2, "json": 2, "sloppyThis": True, "implicitGlobal": 5, "rest": 4, "hex": "ff38414210",
                    "cls": 510, "template": "t=-2", "max": 255, "hexParse": 255, "pow": 1032,
                    "date": "1970-01-01T00:00:00.000Z", "octal": 8}


def test_a_codec_reaches_nothing_of_the_host() -> None:
    codec = JsCodec("""
    function decodeUplink(input) {
      var names = ["require", "process", "std", "os", "fetch", "XMLHttpRequest", "module", "exports",
                   "print", "scriptArgs", "setTimeout", "Deno", "Bun"];
      var found = names.filter(function (n) { return typeof globalThis[n] !== "undefined"; });
      return {data: {found: found}};
    }""", LIMITS)
    assert codec.decode(b"", 1).data == {"found": []}
    fails_with(JsCodecFailure.THREW, lambda: JsCodec("function decodeUplink(i) { return {data: {f: require('fs')}}; }", LIMITS).decode(b"", 1))
    fails_with(JsCodecFailure.THREW, lambda: JsCodec("import * as os from 'os'; function decodeUplink(i) {}", LIMITS))


@pytest.mark.parametrize(("name", "source", "reason", "says"), [
    ("endless loop", "function decodeUplink(i) { while (true) {} }", JsCodecFailure.TIMEOUT, "time limit"),
    ("loop catching the interrupt", "function decodeUplink(i) { for (;;) { try { for (;;) {} } catch (e) {} } }",
     JsCodecFailure.TIMEOUT, "time limit"),
    ("huge allocation", "function decodeUplink(i) { var a = []; for (;;) a.push(new Array(1e5).fill(1)); }",
     JsCodecFailure.MEMORY, "heap limit"),
    ("huge typed array", "function decodeUplink(i) { return {data: {n: new Uint8Array(1e9).length}}; }",
     JsCodecFailure.MEMORY, "heap limit"),
    ("deep recursion", "function decodeUplink(i) { return deeper(0); } function deeper(n) { return deeper(n + 1) + 1; }",
     JsCodecFailure.MEMORY, "stack limit"),
    ("throw", "function decodeUplink(i) { throw new Error('unknown frame type 0x7f'); }",
     JsCodecFailure.THREW, "Error: unknown frame type 0x7f"),
    ("undefined global", "function decodeUplink(i) { return {data: {v: Buffer.from(i.bytes)}}; }",
     JsCodecFailure.THREW, "ReferenceError: 'Buffer' is not defined"),
    ("non-object result", "function decodeUplink(i) { return 42; }", JsCodecFailure.BAD_RESULT, "returned number, not an object"),
    ("array result", "function Decoder(b, p) { return [1, 2]; }", JsCodecFailure.BAD_RESULT, "returned an array"),
    ("no result", "function Decode(p, b, v) { }", JsCodecFailure.BAD_RESULT, "returned undefined"),
    ("no data", "function decodeUplink(i) { return {warnings: []}; }", JsCodecFailure.BAD_RESULT, "no data object"),
    ("errors returned", "function decodeUplink(i) { return {errors: ['unknown fPort ' + i.fPort]}; }",
     JsCodecFailure.ERRORS, "unknown fPort 1"),
    ("cyclic result", "function decodeUplink(i) { var d = {}; d.self = d; return {data: d}; }",
     JsCodecFailure.THREW, "TypeError"),
])
def test_a_hostile_codec_fails_within_its_limit_with_its_reason_and_the_next_call_works(name, source, reason, says) -> None:
    cache = JsCodecCache(LIMITS)
    started = time.perf_counter()
    error = fails_with(reason, lambda: cache.decode(("hostile", 1), source, b"\x01\x02", 1))
    assert time.perf_counter() - started < LIMITS.time_limit_s * 5
    assert says in str(error) and str(error).startswith(reason.value)
    assert isinstance(error, CodecError)
    # the same engine goes on: a good codec, and the hostile one again with the same reason
    assert cache.decode(("good", 1), GOOD, b"\x01\x02", 1).data == {"temperature": 25.8, "port": 1}
    fails_with(reason, lambda: cache.decode(("hostile", 1), source, b"\x01\x02", 1))


def test_a_codec_stopped_by_a_limit_is_loaded_afresh_and_works_for_the_next_frame() -> None:
    source = """
    var frames = 0;
    function decodeUplink(input) {
      frames += 1;
      if (input.bytes[0] === 0xff) { while (true) {} }
      if (input.bytes[0] === 0xfe) { var a = []; for (;;) a.push(new Array(1e5).fill(frames)); }
      return {data: {frames: frames}};
    }"""
    cache = JsCodecCache(LIMITS)
    assert cache.decode("p", source, b"\x01", 1).data == {"frames": 1}
    fails_with(JsCodecFailure.TIMEOUT, lambda: cache.decode("p", source, b"\xff", 1))
    assert cache.decode("p", source, b"\x01", 1).data == {"frames": 1}  # fresh globals
    fails_with(JsCodecFailure.MEMORY, lambda: cache.decode("p", source, b"\xfe", 1))
    assert cache.decode("p", source, b"\x01", 1).data == {"frames": 1}
    assert cache.decode("p", source, b"\x01", 1).data == {"frames": 2}  # cached between good frames


def test_a_codec_without_an_entry_point_or_with_a_syntax_error_fails_when_loaded() -> None:
    error = fails_with(JsCodecFailure.MISSING_ENTRY_POINT, lambda: JsCodec("function decode(bytes) { return {}; }", LIMITS))
    assert "decodeUplink" in error.detail
    fails_with(JsCodecFailure.THREW, lambda: JsCodec("function decodeUplink(input { }", LIMITS))
    fails_with(JsCodecFailure.TIMEOUT, lambda: JsCodec("for (;;) {} function decodeUplink(i) {}", LIMITS))


def test_a_codec_that_fails_to_load_is_compiled_once_per_profile_version() -> None:
    cache = JsCodecCache(LIMITS)
    slow_broken = "for (;;) {}"
    fails_with(JsCodecFailure.TIMEOUT, lambda: cache.decode(("p", 1), slow_broken, b"", 1))
    started = time.perf_counter()
    fails_with(JsCodecFailure.TIMEOUT, lambda: cache.decode(("p", 1), slow_broken, b"", 1))
    assert time.perf_counter() - started < LIMITS.time_limit_s / 2  # remembered, not run again
    assert cache.decode(("p", 2), GOOD, b"\x00\x01", 2).data == {"temperature": 0.1, "port": 2}


def test_the_cache_keeps_at_most_its_bound_evicting_the_least_recently_used() -> None:
    cache = JsCodecCache(JsCodecLimits(cache_size=3))
    for version in range(5):
        cache.decode(("p", version), GOOD.replace("/ 10", f"/ {version + 1}"), b"\x00\x0a", 1)
    assert len(cache) == 3
    first = cache.codec(("p", 4), "not compiled again: cached")
    assert cache.codec(("p", 4), "still cached") is first
    with pytest.raises(JsCodecError):
        cache.codec(("p", 0), "evicted, so this source is compiled")
    assert len(cache) == 3


def test_one_codecs_globals_are_not_another_codecs() -> None:
    cache = JsCodecCache(LIMITS)
    cache.decode("a", "var secret = 'a'; JSON.parse = null; function decodeUplink(i) { return {data: {s: secret}}; }", b"", 1)
    data = cache.decode("b", "function decodeUplink(i) { return {data: {s: typeof secret, p: typeof JSON.parse}}; }", b"", 1).data
    assert data == {"s": "undefined", "p": "function"}


def test_codecs_compiled_and_called_from_several_threads_at_once_give_their_results() -> None:
    # paho's thread and the writer may both decode; QuickJS checks its stack per call, so a runtime
    # made in one thread and run in another (even into a stack overflow) must work.
    cache = JsCodecCache(JsCodecLimits(cache_size=4))
    recursive = "function decodeUplink(i) { return deeper(0); } function deeper(n) { return deeper(n + 1) + 1; }"
    wrong: list[str] = []

    def work(seed: int) -> None:
        for n in range(200):
            version = (seed + n) % 6
            try:
                if version < 5:
                    got = cache.decode(("good", version), GOOD, bytes([0, version]), version).data
                    if got != {"temperature": version / 10, "port": version}:
                        wrong.append(repr(got))
                else:
                    cache.decode(("recursive", seed), recursive, b"", 1)
                    wrong.append("recursion returned")
            except JsCodecError as exc:
                if version < 5 or exc.reason is not JsCodecFailure.MEMORY:
                    wrong.append(str(exc))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
