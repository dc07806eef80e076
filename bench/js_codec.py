"""Benchmark: a vendor JavaScript codec in QuickJS beside the built-in Cayenne LPP decoder, in one run.

Per-call cost of a cached codec (the Milesight EM300-TH codec of tests/codecs/vendor_codecs on
the vendor's example uplink: battery, temperature, humidity) and of devices.codecs.cayenne_lpp
(decode + to_fields) on a Cayenne frame with the same three values; then the cost of a first call
(compile) and the process's resident memory with 100 distinct compiled codecs loaded (the six
vendor codecs, each made distinct per profile version) beside what the cache counts against its
memory budget. A real worker with 100 profiles, against the issue's 200 MB target: bench/lpwa_adapter.py
(part js100).

    .venv/bin/python -m bench.js_codec [--calls 50000] [--codecs 100]
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from devices.codecs import cayenne_lpp
from devices.codecs.javascript import JsCodecCache, JsCodecLimits

VENDOR_CODECS = Path(__file__).resolve().parent.parent / "tests" / "codecs" / "vendor_codecs"
EM300_TH_UPLINK = bytes([0x01, 0x75, 0x32, 0x03, 0x67, 0xC8, 0x00, 0x04, 0x68, 0x3C])
LPP_UPLINK = cayenne_lpp.encode([cayenne_lpp.LppValue(1, "percentage", 50), cayenne_lpp.LppValue(2, "temperature", 20.0),
                                 cayenne_lpp.LppValue(3, "humidity", 30.0)])


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def per_call_us(call, calls: int) -> float:
    """Best of three runs of `calls` calls, in µs per call."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--codecs", type=int, default=100)
    args = parser.parse_args()

    em300 = (VENDOR_CODECS / "milesight-em300-th.js").read_text()
    # calls back to back use a whole core: a CPU budget of two cores per codec never refuses them
    cache = JsCodecCache(JsCodecLimits(cache_size=args.codecs + 1, cpu_budget_ms_per_s=2000))
    key = ("milesight-em300-th", 1)
    print("JS decode:", cache.decode(key, em300, EM300_TH_UPLINK, 1).data)
    print("LPP decode:", cayenne_lpp.to_fields(cayenne_lpp.decode(LPP_UPLINK)))
    js_us = per_call_us(lambda: cache.decode(key, em300, EM300_TH_UPLINK, 1), args.calls)
    lpp_us = per_call_us(lambda: cayenne_lpp.to_fields(cayenne_lpp.decode(LPP_UPLINK)), args.calls)

    sources = sorted(VENDOR_CODECS.glob("*.js"))
    gc.collect()
    rss_before = rss_mb()
    compile_ms = []
    for index in range(args.codecs):
        source = sources[index % len(sources)].read_text() + f"\nvar pilotlabProfileVersion = {index};\n"
        started = time.perf_counter()
        cache.codec(("profile", index), source)
        compile_ms.append((time.perf_counter() - started) * 1e3)
    gc.collect()
    rss_after = rss_mb()

    rows = [
        ("Cayenne LPP, built-in (decode + fields)", f"{lpp_us:.2f} µs/call"),
        ("EM300-TH JS codec, cached (Decoder form)", f"{js_us:.2f} µs/call  ({js_us / lpp_us:.1f} × LPP)"),
        ("JS codec first call (compile), median", f"{sorted(compile_ms)[len(compile_ms) // 2]:.2f} ms"),
        (f"RSS with {args.codecs} compiled codecs", f"{rss_after:.1f} MB  (+{rss_after - rss_before:.1f} MB, "
                                                    f"{(rss_after - rss_before) * 1024 / args.codecs:.0f} KB each)"),
        ("  as the cache counts them (runtimes' malloc)",
         f"{cache.memory_bytes / 2**20:.1f} MB of its {cache.limits.cache_memory_bytes / 2**20:.0f} MB budget, "
         f"{len(cache)} codecs"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
