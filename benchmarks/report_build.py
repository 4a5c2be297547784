"""Time to build the comparison report of 3 runs of the sample (exact replay, noise 0.03, noise 0.08).

Makes the three runs under ``--output`` first (reused when already there; 1 trial, PSNR, SSIM and
the motion metrics, ``ewmbench-v2``), then builds the report ``--repeat`` times and prints the wall
and CPU time of each stage: reading and statistics, figures, files. The target is under 60 s on a
2-core CPU. Last, the size of the report folder (the page and every file it shows or links) and
of ``report.html`` alone: the target is under 2 MB for the three runs.

    python benchmarks/report_build.py --output runs/ladder [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

LADDER = [("exact", {}), ("noise0.03", {"action_noise": 0.03}), ("noise0.08", {"action_noise": 0.08})]


def make_runs(output: Path, metrics: list[str]) -> list[Path]:
    from ewmbench.run import RunConfig, run

    folders = []
    for name, options in LADDER:
        folder = output / name
        if not (folder / "record.json").is_file():
            print(f"running {name} ...", flush=True)
            run(
                RunConfig(
                    output=folder,
                    dataset="sample",
                    model="sim",
                    model_options=options,
                    trials=1,
                    protocol="ewmbench-v2",
                    metrics=metrics,
                ),
                show_progress=False,
            )
        folders.append(folder)
    return folders


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/ladder"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--metrics", default="psnr,ssim,trajectory_consistency")
    args = parser.parse_args()

    folders = make_runs(args.output, args.metrics.split(","))
    from ewmbench.compare.figures import draw_all
    from ewmbench.compare.report import compare_runs
    from ewmbench.compare.writer import write_report

    print("| build | read + statistics (s) | figures (s) | files (s) | total wall (s) | total CPU (s) |")
    print("|---|---|---|---|---|---|")
    for index in range(args.repeat):
        target = args.output / f"report-{index}"
        shutil.rmtree(target, ignore_errors=True)
        comparison, wall_stats, cpu_stats = timed(lambda: compare_runs(folders))
        _, wall_figures, cpu_figures = timed(lambda c=comparison, t=target: draw_all(c, t))
        # write_report draws the figures again; time the files alone by turning them off
        _, wall_files, cpu_files = timed(lambda c=comparison, t=target: write_report(c, t, figures=False))
        total_wall = wall_stats + wall_figures + wall_files
        total_cpu = cpu_stats + cpu_figures + cpu_files
        print(
            f"| {index + 1} | {wall_stats:.1f} | {wall_figures:.1f} | {wall_files:.1f} | {total_wall:.1f} | {total_cpu:.1f} |",
            flush=True,
        )
    report = args.output / "report"
    shutil.rmtree(report, ignore_errors=True)
    _, wall, cpu = timed(lambda: write_report(compare_runs(folders), report))
    print(
        f"\nend to end (compare_runs + write_report with figures): {wall:.1f} s wall, {cpu:.1f} s CPU -> {report}"
    )
    files = [p for p in report.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    html = (report / "report.html").stat().st_size
    print(f"report size: {total / 1e6:.2f} MB in {len(files)} files (report.html {html / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
