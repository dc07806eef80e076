"""A device profile's JavaScript codecs, loaded once when the profile is made or changed.

A codec that does not compile (a syntax error), throws or runs past a limit while loading, or
defines no entry point (decodeUplink, Decoder, Decode) would fail every frame of every device
using the profile; loading each one here, in QuickJS under the limits ingest runs it with, refuses
the profile at once (API 422, CLI exit 2) with the engine's message and the fPort, instead of a
dead letter at the first uplink. A script shared by several ports is loaded once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devices.codecs.javascript import JsCodec, JsCodecLimits
from devices.profiles import JavascriptCodec, ProfileDefinition
from pilotlab.errors import InvalidRequest, JsCodecError

if TYPE_CHECKING:
    from pilotlab.settings import Settings


def js_codec_limits(settings: Settings) -> JsCodecLimits:
    """The vendor JavaScript codecs' per-call limits and their cache's budgets, from the settings."""
    return JsCodecLimits(time_limit_s=settings.js_codec_time_limit_ms / 1000,
                         memory_limit_bytes=settings.js_codec_memory_limit_mb * 1024 * 1024,
                         stack_limit_bytes=settings.js_codec_stack_limit_kb * 1024,
                         cache_size=settings.js_codec_cache_size,
                         cache_memory_bytes=settings.js_codec_cache_memory_mb * 1024 * 1024,
                         cpu_budget_ms_per_s=settings.js_codec_cpu_budget_ms_per_s)


def codec_problems(definition: ProfileDefinition, limits: JsCodecLimits) -> list[str]:
    """One line per fPort whose JavaScript codec does not load under `limits`, lowest port first."""
    failures: dict[str, JsCodecError | None] = {}  # script -> its load error, None if it loads
    problems = []
    for port, uplink in sorted(definition.uplinks.items(), key=lambda item: int(item[0])):
        codec = uplink.codec
        if not isinstance(codec, JavascriptCodec):
            continue
        if codec.script not in failures:
            try:
                JsCodec(codec.script, limits)
                failures[codec.script] = None
            except JsCodecError as exc:
                failures[codec.script] = exc
        failure = failures[codec.script]
        if failure is not None:
            problems.append(f"fPort {port}: the JavaScript codec does not load ({failure.reason.value}): {failure.detail}")
    return problems


def check_codecs(definition: ProfileDefinition, limits: JsCodecLimits, where: str = "") -> None:
    """InvalidRequest naming every fPort whose JavaScript codec does not load; `where` prefixes it."""
    problems = codec_problems(definition, limits)
    if problems:
        raise InvalidRequest(f"{where}invalid device profile: {'; '.join(problems)}")
