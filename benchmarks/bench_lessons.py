"""Running time of every lesson, top to bottom, per runtime profile.

Each lesson's student notebook is filled with the master's answers (what a student
hands in after the work) and executed with nbclient in a fresh kernel, once per
profile asked for. Budgets (../shared/LESSON_CHECKLIST.md): <= 30 s in ``smoke``,
<= 6 min in ``cpu``, on two CPU cores. Prints JSON; the README's lesson table quotes it.

    python benchmarks/bench_lessons.py                       # smoke and cpu, every lesson
    python benchmarks/bench_lessons.py --profiles smoke      # the quick look
    python benchmarks/bench_lessons.py --lessons 00_workflow 03_momentum
    python benchmarks/bench_lessons.py --keep runs/bench-lessons   # keep the executed notebooks
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course_utils.instructor import grading, release
from course_utils.runtime.device import usable_cpu_count

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = {"smoke": 30, "cpu": 360, "gpu": None}


def run_lesson(lesson: str, profile: str, folder: Path) -> float:
    """Seconds to execute the solved student version of ``lesson`` in ``profile``."""
    master = release.read_notebook(release.master_path(lesson, ROOT / "assignments"))
    student = release.read_notebook(ROOT / "notebooks" / f"{lesson}.ipynb")
    nb = grading.make_submission(student, grading.solution_answers(master))
    work = folder / f"{lesson}-{profile}"
    work.mkdir()
    os.environ["COURSE_PROFILE"] = profile
    start = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(work)}}).execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, work / f"{lesson}.ipynb")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["smoke", "cpu"],
                        choices=sorted(BUDGET_S))
    parser.add_argument("--lessons", nargs="+", default=None, metavar="LESSON")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep the executed notebooks (what each lesson printed) in DIR")
    args = parser.parse_args()
    lessons = args.lessons or release.list_lessons(ROOT / "assignments")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lessons-") as scratch:
        folder = Path(scratch)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            folder = args.keep
        for lesson in lessons:
            for profile in args.profiles:
                shutil.rmtree(folder / f"{lesson}-{profile}", ignore_errors=True)
                seconds = run_lesson(lesson, profile, folder)
                budget = BUDGET_S[profile]
                rows.append({"lesson": lesson, "profile": profile, "seconds": round(seconds, 1),
                             "budget_s": budget,
                             "within_budget": None if budget is None else seconds <= budget})
                print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"benchmark": "lesson_run_time", "cores": usable_cpu_count(),
                      "lessons": rows}, indent=2))


if __name__ == "__main__":
    main()
