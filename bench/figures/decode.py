"""decode: the project's Codec.decode against a bare fastavro schemaless_reader loop over the same payloads.

The payloads are the input topic's messages that the codec accepts (broken ones are left out of both loops).
The two loops alternate within each repetition, after one unmeasured pass of each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.context import Context
from bench.figures.raw import bare_decode, parsed_by_fingerprint
from bench.stats import headline, summary
from schemas.errors import PoisonInput

TARGET = 1.1  # codec time / bare time


def _timed(fn: Callable[[bytes], Any], payloads: list[bytes]) -> float:
    start = time.perf_counter()
    for data in payloads:
        fn(data)
    return time.perf_counter() - start


def _decodable(ctx: Context) -> list[bytes]:
    out = []
    for r in ctx.records[: ctx.sizes.decode_payloads]:
        try:
            ctx.codec.decode(r.value)
        except PoisonInput:
            continue
        out.append(r.value)
    return out


def run(ctx: Context) -> dict[str, Any]:
    payloads = _decodable(ctx)
    if not payloads:
        raise ValueError("no decodable payloads in the input topic")
    schemas = parsed_by_fingerprint(ctx)

    def bare(data: bytes) -> Any:
        return bare_decode(data, schemas)

    codec = ctx.codec.decode
    _timed(bare, payloads)
    _timed(codec, payloads)
    bare_s, codec_s = [], []
    for i in range(ctx.sizes.repetitions):
        bare_s.append(_timed(bare, payloads))
        codec_s.append(_timed(codec, payloads))
        ctx.log(f"decode {i + 1}/{ctx.sizes.repetitions}: bare {bare_s[-1]:.2f}s, codec {codec_s[-1]:.2f}s")
    n = len(payloads)
    ratios = summary([c / b for c, b in zip(codec_s, bare_s, strict=True)])
    overhead_us = (sorted(codec_s)[len(codec_s) // 2] - sorted(bare_s)[len(bare_s) // 2]) / n * 1e6
    return {
        "what": "Codec.decode (single-object header, fingerprint lookup, resolution, trailing-bytes check, Event) "
        "vs fastavro schemaless_reader on the writer schema, same payloads, one process",
        "payloads": n,
        "codec": summary([n / s for s in codec_s], 0),
        "bare": summary([n / s for s in bare_s], 0),
        "ratio": ratios,
        "overhead_us_per_event": round(overhead_us, 2),
        "target": {"metric": "codec time / bare time", "op": "<=", "value": TARGET},
        "headline": headline("decode", "x bare time", ratios),
    }
