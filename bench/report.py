"""Aggregation of a ``bench/run`` result: the README table and the PNG chart.

    .venv/bin/python bench/report.py [bench/results/latest.json] [--chart out.png]

prints the Markdown snippet the README's "Measured" section carries and (re)draws
the chart with Pillow: finished transactions/s per setup and concurrency against the
raw signing ceiling, the raw sign/verify rate per curve, and export/verify logs/s.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 1200, 900
COLOURS = {1: (120, 170, 220), 16: (40, 110, 180), 64: (15, 55, 110)}
SIGN, VERIFY = (220, 120, 60), (90, 160, 90)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _num(x: float) -> str:
    if x >= 10_000:
        return f"{x / 1000:.0f}k"
    if x >= 1000:
        return f"{x / 1000:.1f}k"
    return f"{x:.0f}"


def _bars(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    groups: list[tuple[str, list[tuple[str, float, tuple[int, int, int]]]]],
    line: tuple[str, float] | None = None,
) -> None:
    """Vertical grouped bars in ``box`` (x0, y0, x1, y1), linear scale from zero."""
    x0, y0, x1, y1 = box
    small, normal = _font(13), _font(16)
    draw.text((x0, y0), title, fill="black", font=normal)
    top, bottom = y0 + 30, y1 - 40
    values = [v for _, bars in groups for _, v, _ in bars] + ([line[1]] if line else [])
    peak = max([*values, 1.0]) * 1.12
    draw.line((x0 + 40, bottom, x1, bottom), fill="black")
    slot = (x1 - x0 - 50) / max(1, len(groups))
    for gi, (label, bars) in enumerate(groups):
        gx = x0 + 50 + gi * slot
        width = (slot - 16) / max(1, len(bars))
        for bi, (_name, value, colour) in enumerate(bars):
            bx = gx + bi * width
            by = bottom - (bottom - top) * value / peak
            draw.rectangle((bx, by, bx + width - 3, bottom), fill=colour)
            draw.text((bx, by - 15), _num(value), fill="black", font=small)
        draw.text((gx, bottom + 6), label, fill="black", font=small)
    if line is not None:
        ly = bottom - (bottom - top) * line[1] / peak
        draw.line((x0 + 40, ly, x1, ly), fill=(200, 30, 30), width=2)
        draw.text((x0 + 45, ly - 16), f"{line[0]}: {_num(line[1])}", fill=(200, 30, 30), font=small)


def draw_chart(result: dict[str, Any], path: Path) -> None:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    m = result["machine"]
    head = (
        f"opentse bench/run ({result['mode']}) {result['date']}  ·  {m['nproc']} cores, "
        f"{m['cpu_model']}  ·  commit {result.get('commit', '')}"
    )
    draw.text((20, 12), head, fill="black", font=_font(16))
    raw = result["raw"]
    half = raw["P-256"]["sign_per_s"] / 2
    by_setup: dict[str, list[tuple[str, float, tuple[int, int, int]]]] = {}
    for run in result["transactions"]:
        colour = COLOURS.get(run["clients"], (80, 80, 80))
        by_setup.setdefault(run["setup"], []).append(
            (f"{run['clients']}", float(run["tx_per_s"]), colour)
        )
    _bars(
        draw,
        (20, 50, WIDTH - 20, 470),
        "Finished transactions/s (bars: 1 / 16 / 64 concurrent clients; P-256)",
        list(by_setup.items()),
        ("raw P-256 sign/s ÷ 2", half),
    )
    legend_x = WIDTH - 300
    for i, (clients, colour) in enumerate(COLOURS.items()):
        x = legend_x + i * 95
        draw.rectangle((x, 54, x + 14, 68), fill=colour)
        draw.text(
            (x + 20, 53),
            f"{clients} client{'s' if clients > 1 else ''}",
            fill="black",
            font=_font(13),
        )
    curves = [
        (name, [("sign", r["sign_per_s"], SIGN), ("verify", r["verify_per_s"], VERIFY)])
        for name, r in raw.items()
    ]
    _bars(
        draw,
        (20, 500, WIDTH // 2 - 10, HEIGHT - 20),
        "Raw cryptography, one core: sign (orange) / verify (green) per s",
        curves,
    )
    exp = result.get("export") or {}
    if exp:
        groups = [
            ("export logs/s", [("export", float(exp["export_logs_per_s"]), (120, 90, 170))]),
            ("verify logs/s", [("verify", float(exp["verify_logs_per_s"]), VERIFY)]),
        ]
        cores = m["nproc"] or 1
        _bars(
            draw,
            (WIDTH // 2 + 10, 500, WIDTH - 20, HEIGHT - 20),
            f"Export and verify of {exp['export_logs']} logs",
            groups,
            _verify_line(raw["P-256"], cores),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)


def _verify_line(p256: dict[str, Any], cores: int) -> tuple[str, float]:
    """The verifier's ceiling: raw verifies with one thread per core when the run
    measured it (this VM's vCPUs do not add up to cores x one core), else the
    one-core rate x cores."""
    every = p256.get("verify_per_s_all_cores")
    if every:
        return f"raw verify/s, a thread per core ({cores})", float(every)
    return f"raw verify/s x {cores} cores", float(p256["verify_per_s"]) * cores


def markdown_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    raw = result["raw"]
    lines = [
        f"Measured {result['date'][:16].replace('T', ' ')} UTC on {m['nproc']} cores "
        f"({m['cpu_model']}), `bench/run` ({result['mode']}, commit {result.get('commit', '')}, "
        f"load average {m['load_average_at_start'][0]} at start), "
        f"{result['seconds_per_point']} s per point.",
        "",
        "| setup | clients | finished tx/s | p50 ms | p99 ms | ÷ (raw sign/s ÷ 2) "
        "| ÷ (raw sign/s, all cores, ÷ 2) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result["transactions"]:
        lines.append(
            f"| {run['setup']} | {run['clients']} | {run['tx_per_s']:.0f} | {run['p50_ms']} "
            f"| {run['p99_ms']} | {run.get('ratio_to_half_raw_sign', '')} "
            f"| {run.get('ratio_to_half_raw_sign_all_cores', '')} |"
        )
    lines += ["", "| curve | raw sign/s (1 core) | raw verify/s (1 core) |", "|---|---:|---:|"]
    for name, r in raw.items():
        lines.append(f"| {name} | {r['sign_per_s']:.0f} | {r['verify_per_s']:.0f} |")
    all_cores = raw.get("P-256", {}).get("sign_per_s_all_cores")
    if all_cores:
        lines += ["", f"P-256 with one signing thread per core: {all_cores:.0f} signatures/s."]
    verify_all = raw.get("P-256", {}).get("verify_per_s_all_cores")
    if verify_all:
        lines[-1] += f" With one verifying thread per core: {verify_all:.0f} verifications/s."
    exp = result.get("export")
    if exp:
        lines += [
            "",
            f"Export of {exp['export_logs']} logs ({exp['export_mb']} MB): "
            f"{exp['export_logs_per_s']:.0f} logs/s "
            f"({exp.get('export_ratio_to_raw_sign', '')} × the raw signing rate); "
            f"verify with {exp['verify_workers']} workers: {exp['verify_logs_per_s']:.0f} logs/s "
            f"({exp.get('verify_ratio_to_raw_verify_on_every_core', '')} × raw verify/s with "
            f"one thread per core, {exp.get('verify_ratio_to_raw_verify_all_cores', '')} × "
            "one core's raw verify/s × cores), "
            f"verified ok: {exp['verify_ok']}. {exp['note'][:1].upper()}{exp['note'][1:]}.",
        ]
    if result.get("postgres") != "ran":
        lines += ["", f"PostgreSQL: {result.get('postgres')}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", nargs="?", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--chart", type=Path, default=None)
    args = parser.parse_args()
    result = json.loads(args.result.read_text())
    if args.chart is not None:
        draw_chart(result, args.chart)
    print(markdown_table(result))


if __name__ == "__main__":
    main()
