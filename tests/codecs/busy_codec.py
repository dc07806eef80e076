"""A vendor-style JavaScript codec that works for a given number of milliseconds of CPU per frame
(`bytes[0]` ms, a loop sized on this machine), for tests of the codecs' CPU budget: spinning on
the wall clock instead would use less CPU than it says whenever the machine is busy elsewhere."""

from __future__ import annotations

import functools
import time

from devices.codecs.javascript import JsCodec, JsCodecLimits

_SOURCE = """
var frames = 0;
function decodeUplink(input) {
  frames += 1;
  var n = input.bytes[0] * %d, x = 0;
  for (var i = 0; i < n; i++) { x = (x + i) | 0; }
  return {data: {frames: frames, t: input.bytes.length > 1 ? input.bytes[1] : x & 0}};
}
"""


@functools.cache
def busy_codec() -> str:
    """The codec's source: `frames` counts its calls since it was loaded, `t` is `bytes[1]`."""
    probe = JsCodec(_SOURCE % 10_000, JsCodecLimits(time_limit_s=5))
    best = min(_cpu_of(probe) for _ in range(5))  # 100 ms of work at 10,000 iterations per ms
    return _SOURCE % round(10_000 * 0.1 / best)


def _cpu_of(codec: JsCodec) -> float:
    started = time.thread_time()
    codec.decode(bytes([100]), 1)
    return time.thread_time() - started
