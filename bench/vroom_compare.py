#!/usr/bin/env python3
"""Compare Revisit's routes with VROOM's on the same jobs (optional; `cargo test` never needs it).

Usage:
    pip install pyvroom
    cargo run --release -p revisit-scheduler --example quality -- --export /tmp/quality ...
    python3 bench/vroom_compare.py /tmp/quality/*.json [--exploration 5] [--threads 1]

Each JSON file is one run of the `quality` example: technicians (home, one shift per day), the
booked jobs (location, duration, the promised window), the jobs Revisit refused (with every window
they could have had) and the travel matrix in seconds that Revisit used.

VROOM solves the same jobs with the same matrix, each job kept in its promised day and window:
vehicles are technician-days (start and end at home, time window = that day's shift) and a job's
only time window is its promised window, so it can only go to a vehicle of its day. VROOM's
travel is `summary.duration` (seconds of driving). The script prints Revisit's travel as booked
and after re-optimisation, VROOM's, and the ratios.

With refused jobs, a second solve adds them with every window they could have had (lower
priority than the booked jobs, which must all stay): the refused jobs VROOM still places are
jobs a plan within the promises could have fitted.
"""

import argparse
import json
import sys
import time

try:
    import vroom
except ImportError:  # pragma: no cover
    sys.exit("pyvroom is not installed: pip install pyvroom")
import numpy as np


def merged(windows):
    """Sorted windows with touching or overlapping ones joined (VROOM refuses overlaps)."""
    out = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def build(doc, with_refused):
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=np.array(doc["matrix"], dtype=np.uint32))
    vehicles = []
    for t in doc["technicians"]:
        for day, (start, end) in enumerate(t["shifts"]):
            vehicles.append(
                vroom.Vehicle(
                    len(vehicles) + 1,
                    start=t["home"],
                    end=t["home"],
                    time_window=vroom.TimeWindow(start, end),
                    description=f'{t["id"]}/{day}',
                )
            )
    problem.add_vehicle(vehicles)
    jobs = []
    for j in doc["jobs"]:
        w0, w1 = j["window"]
        jobs.append(
            vroom.Job(
                len(jobs) + 1,
                location=j["location"],
                default_service=j["duration"],
                time_windows=[vroom.TimeWindow(w0, w1)],
                priority=100,
                description=j["id"],
            )
        )
    booked = len(jobs)
    if with_refused:
        for j in doc["refused"]:
            jobs.append(
                vroom.Job(
                    len(jobs) + 1,
                    location=j["location"],
                    default_service=j["duration"],
                    time_windows=[vroom.TimeWindow(a, b) for a, b in merged(j["windows"])],
                    priority=1,
                    description=j["id"],
                )
            )
    problem.add_job(jobs)
    return problem, booked


def solve(problem, args):
    started = time.perf_counter()
    solution = problem.solve(exploration_level=args.exploration, nb_threads=args.threads)
    return solution, time.perf_counter() - started


def unassigned_ids(solution):
    return {u["id"] for u in solution.to_dict().get("unassigned", [])}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--exploration", type=int, default=5, help="VROOM exploration level (0-5)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    print("| run | jobs | Revisit booked (min) | Revisit re-optimised (min) | VROOM (min) | booked / VROOM | re-optimised / VROOM | VROOM time | refused | refused VROOM fits |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in args.files:
        with open(path) as f:
            doc = json.load(f)
        problem, booked = build(doc, with_refused=False)
        solution, seconds = solve(problem, args)
        missing = unassigned_ids(solution)
        vroom_min = solution.summary.duration / 60
        booked_min = doc["travel_booked_seconds"] / 60
        reopt_min = doc["travel_reoptimised_seconds"] / 60
        note = f" ({len(missing)} of {booked} jobs unassigned by VROOM!)" if missing else ""
        fits = "-"
        if doc["refused"]:
            problem, booked = build(doc, with_refused=True)
            sol2, _ = solve(problem, args)
            gone = unassigned_ids(sol2)
            lost_booked = sum(1 for i in gone if i <= booked)
            placed = len(doc["refused"]) - sum(1 for i in gone if i > booked)
            fits = f"{placed}" + (f" ({lost_booked} booked dropped)" if lost_booked else "")
        name = f'{doc["offers"]}/{doc["customer"]} seed {doc["seed"]}'
        print(
            f"| {name} | {booked} | {booked_min:.0f} | {reopt_min:.0f} | {vroom_min:.0f}{note} | "
            f"{booked_min / vroom_min:.3f} | {reopt_min / vroom_min:.3f} | {seconds:.1f} s | "
            f'{len(doc["refused"])} | {fits} |'
        )


if __name__ == "__main__":
    main()
