"""Run a harness: under atheris (libFuzzer, coverage-guided) or a plain mutator.

The plain mutator needs nothing but the standard library: it takes the seed inputs
(vendor logs/exports from ``../shared/testdata`` and exports of our own), applies a
few random byte-level mutations per input (flip, insert, delete, duplicate, splice,
interesting values, length-field tweaks) and calls the harness. It is deterministic
for a given ``--seed``, so a CI failure replays. Anything the harness raises other
than the one allowed error class is a finding; the offending input is written to
``fuzz/crashes/`` so it can be replayed with ``--replay FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata" / "tse-exports"
CRASH_DIR = ROOT / "fuzz" / "crashes"

INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x81", b"\x82", b"\x84", b"\x01", b"\x30")


Mutator = Callable[[random.Random, bytes, Sequence[bytes], Sequence[int]], bytes]


@dataclass
class Result:
    inputs: int = 0
    seconds: float = 0.0
    crashes: list[tuple[bytes, str]] = field(default_factory=list)


def mutate(rng: random.Random, data: bytes, corpus: Sequence[bytes], hot: Sequence[int]) -> bytes:
    """One to four random edits; ``hot`` are offsets worth hitting (headers, lengths)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        n = len(buf)
        pos = rng.choice(hot) if hot and rng.random() < 0.5 else rng.randrange(n + 1)
        pos = min(pos + rng.randrange(4), n)
        op = rng.randrange(9)
        if op == 0 and n:  # flip a bit
            i = min(pos, n - 1)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and n:  # delete a run
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 3 and n:  # duplicate a chunk
            a = rng.randrange(n)
            chunk = buf[a : a + rng.randint(1, 64)]
            buf[pos:pos] = chunk
        elif op == 4:  # splice with another corpus entry
            other = rng.choice(corpus)
            if other:
                a = rng.randrange(len(other))
                buf[pos:] = other[a : a + rng.randint(1, 256)] + buf[pos:]
        elif op == 5 and n:  # interesting byte values
            i = min(pos, n - 1)
            buf[i : i + 1] = rng.choice(INTERESTING)
        elif op == 6:  # truncate
            del buf[pos:]
        elif op == 7 and n:  # set a byte to a random value
            buf[min(pos, n - 1)] = rng.randrange(256)
        elif op == 8 and n:  # ASCII digits / separators (TAR headers, QR text)
            buf[min(pos, n - 1)] = rng.choice(b"0123456789;/.\\ \n")
    return bytes(buf)


def run_plain(
    target: Callable[[bytes], None],
    seeds: Sequence[bytes],
    inputs: int,
    *,
    seed: int = 0,
    hot: Callable[[bytes], Sequence[int]] | None = None,
    max_crashes: int = 5,
    mutator: Mutator | None = None,
) -> Result:
    """Call ``target`` on the seeds, then on ``inputs`` mutated seeds (``mutator``
    replaces the byte-level ``mutate`` for harnesses whose inputs have structure)."""
    rng = random.Random(seed)
    edit = mutator or mutate
    result = Result()
    hot_of = {i: (hot(s) if hot else ()) for i, s in enumerate(seeds)}
    start = time.perf_counter()
    for i in range(inputs):
        if i < len(seeds):
            data = seeds[i]
        else:
            k = rng.randrange(len(seeds))
            data = edit(rng, seeds[k], seeds, hot_of[k])
        try:
            target(data)
        except Exception:  # the harness re-raises only what is not allowed
            result.crashes.append((data, traceback.format_exc()))
            if len(result.crashes) >= max_crashes:
                break
        result.inputs += 1
    result.seconds = time.perf_counter() - start
    return result


def save_crashes(name: str, result: Result) -> list[Path]:
    CRASH_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (data, _tb) in enumerate(result.crashes):
        path = CRASH_DIR / f"{name}-{int(time.time())}-{i}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def atheris_mode() -> bool:
    """True when a harness runs as a program under atheris (not --plain/--replay)."""
    return not any(a.startswith(("--plain", "--replay")) for a in sys.argv[1:])


def instrumented(main_module: bool) -> contextlib.AbstractContextManager[object]:
    """Coverage instrumentation of our readers' imports, only for an atheris run.

    Instrumenting only ``opentse.tr03151`` and ``opentse.formats`` (imported inside
    this block, before anything else imports them) keeps start-up at a second or two;
    ``atheris.instrument_all()`` would take minutes on a shared 2-core machine.
    """
    if not (main_module and atheris_mode()):
        return contextlib.nullcontext()
    import atheris  # type: ignore[import-not-found,unused-ignore]

    cm: contextlib.AbstractContextManager[object] = atheris.instrument_imports(
        include=["opentse.tr03151", "opentse.formats"]
    )
    return cm


def main(
    name: str,
    target: Callable[[bytes], None],
    seeds: Callable[[], list[bytes]],
    hot: Callable[[bytes], Sequence[int]] | None = None,
    mutator: Mutator | None = None,
) -> None:
    """Command line of every harness: ``--plain N``, ``--replay FILE`` or atheris args."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--plain", type=int, default=None, help="plain mutator, N inputs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", type=Path, default=None)
    args, rest = parser.parse_known_args()
    if args.replay is not None:
        target(args.replay.read_bytes())
        print("no finding")
        return
    if args.plain is not None:
        result = run_plain(target, seeds(), args.plain, seed=args.seed, hot=hot, mutator=mutator)
        print(
            f"{name}: {result.inputs} inputs in {result.seconds:.1f}s, "
            f"{len(result.crashes)} findings"
        )
        for path, (_data, tb) in zip(save_crashes(name, result), result.crashes, strict=True):
            print(f"--- {path}\n{tb}")
        sys.exit(1 if result.crashes else 0)
    import atheris  # type: ignore[import-not-found,unused-ignore]

    corpus_dirs = [a for a in rest if not a.startswith("-")]
    if not corpus_dirs:  # seed a temporary corpus with our inputs
        tmp = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
        for i, data in enumerate(seeds()):
            (tmp / f"seed{i}").write_bytes(data)
        rest.append(str(tmp))
    atheris.Setup([sys.argv[0], *rest], target)
    atheris.Fuzz()
