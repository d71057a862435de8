"""Benchmark: verified logs/s of ``opentse verify`` vs raw ``cryptography`` verifies/s.

Builds a synthetic-but-valid export of ours (default 10^5 logs, P-256, keys from
``cryptography``, logs from the core encoder) in a temporary folder, then measures in
the same run:

- raw: ``EllipticCurvePublicKey.verify`` over the same signed data, one process
  (the ceiling of one core);
- verify: the whole verifier (TAR read, decode, all checks, signatures) with 1
  worker and with every core; ``per_core`` = logs/s divided by the workers used;
  ``per_cpu`` = logs per CPU second (this process and its workers), which does not
  depend on what else the (shared) machine is doing.

The figure that counts is ``per_cpu_vs_raw`` (target >= 0.90): verified logs per CPU
second of the whole verifier (this process plus its worker processes, reading,
decoding, every check) divided by raw verifies per CPU second, measured right before
and after each run. Wall-clock rates are printed too but swing with the machine's
load. Prints one JSON object on stdout and a one-line summary on stderr. Usage:
``.venv/bin/python bench/bench_verify.py [--logs N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from opentse.tr03151.signature import public_key_from_point
from opentse.verify.archive import load_exports
from opentse.verify.report import verify_loaded
from opentse.verify.synthetic import build_export

TARGET = 0.9


def raw_rate(path: Path, sample: int) -> tuple[float, float]:
    """Raw verifies per wall second and per CPU second of cryptography on this
    export's own signed data (one process)."""
    export = load_exports([path])
    msgs = [log.message for log in export.logs if log.message is not None][:sample]
    point = next(c.point for c in export.certificates if c.point is not None)
    key = public_key_from_point(point, None)
    size = (key.curve.key_size + 7) // 8
    pairs = [
        (
            m.signed_data or b"",
            encode_dss_signature(
                int.from_bytes(m.signature_value[:size], "big"),
                int.from_bytes(m.signature_value[size:], "big"),
            ),
        )
        for m in msgs
    ]
    alg = ec.ECDSA(hashes.SHA256())
    start = time.perf_counter()
    cpu = time.process_time()
    for data, der in pairs:
        key.verify(der, data, alg)
    return len(pairs) / (time.perf_counter() - start), len(pairs) / (time.process_time() - cpu)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker pool)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--raw-sample", type=int, default=20_000)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.tar"
        t0 = time.perf_counter()
        build_export(path, args.logs)
        build_s = time.perf_counter() - t0
        sample = min(args.raw_sample, args.logs)
        runs: dict[str, dict[str, float]] = {}
        for workers in sorted({1, cores}):
            # raw rate right before and after the run: the machine is shared, so the
            # ratio compares like with like
            raw_before, raw_cpu_before = raw_rate(path, sample)
            cpu0 = cpu_seconds()
            t0 = time.perf_counter()
            loaded = load_exports([path], workers=workers, settle=False)
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = verify_loaded(loaded)
            checks = time.perf_counter() - t0
            cpu = cpu_seconds() - cpu0
            raw_after, raw_cpu_after = raw_rate(path, sample)
            assert report.ok and len(report.signatures.valid) == args.logs
            raw = (raw_before + raw_after) / 2
            raw_cpu = (raw_cpu_before + raw_cpu_after) / 2
            wall = load_s + checks
            rate = args.logs / wall
            runs[f"workers_{workers}"] = {
                "seconds": round(wall, 3),
                "logs_per_s": round(rate),
                "per_core_logs_per_s": round(rate / workers),
                "raw_cryptography_verifies_per_s_one_core": round(raw),
                "per_core_vs_raw": round(rate / workers / raw, 3),
                # load-independent: logs per CPU second vs raw verifies per CPU second
                "logs_per_cpu_s": round(args.logs / cpu),
                "raw_verifies_per_cpu_s": round(raw_cpu),
                "per_cpu_vs_raw": round(args.logs / cpu / raw_cpu, 3),
                "read_decode_verify_seconds": round(load_s, 3),
                "other_checks_seconds": round(checks, 3),
            }
    ratios = {name: run["per_cpu_vs_raw"] for name, run in runs.items()}
    print(
        json.dumps(
            {
                "logs": args.logs,
                "per_cpu_vs_raw": ratios,
                "target": TARGET,
                "curve": "P-256",
                "algorithm": "ecdsa-plain-SHA256",
                "cores": cores,
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "build_seconds": round(build_s, 1),
                "verify": runs,
            },
            indent=2,
        )
    )
    summary = ", ".join(
        f"{name.replace('_', ' ')}: {ratio:.0%} ({runs[name]['logs_per_cpu_s']} logs vs "
        f"{runs[name]['raw_verifies_per_cpu_s']} raw verifies per CPU second)"
        for name, ratio in ratios.items()
    )
    print(
        f"verifier / raw cryptography per CPU second (target {TARGET:.0%}): {summary}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
