"""Grading throughput of lesson 00, side by side with stock nbgrader, in one run.

The same submissions are graded, in this order:

- stock ``nbgrader autograde`` (serial, no sandbox) in a copy of the generated course;
- ``course grade --jobs 1`` unsandboxed (``--unsandboxed``);
- ``course grade --jobs 1`` and ``--jobs 2`` in the sandbox (the default).

Targets: the sandbox costs under 15 % per submission (sandboxed ``--jobs 1`` against
unsandboxed ``--jobs 1``); a second worker speeds grading up at least 1.6 times; lesson 00
runs top to bottom in at most 30 s in the ``smoke`` profile (5 min in ``cpu``). The floor
of a submission is printed beside: starting a Python kernel and importing TensorFlow in
it, which every graded notebook pays before its first cell.

Prints JSON.

    python benchmarks/bench_grading.py                  # grading + smoke run
    python benchmarks/bench_grading.py --cpu            # also the cpu-profile run (~3 min)
    python benchmarks/bench_grading.py --submissions 6  # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from course_utils import grading, release

LESSON = "00_workflow"
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "submissions" / LESSON / "wrong_answers.yml"


def kernel_floor(repeats: int = 3) -> float:
    """Median seconds to start a python3 kernel and import TensorFlow in it."""
    from jupyter_client.manager import start_new_kernel

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        km, kc = start_new_kernel(kernel_name="python3")
        try:
            reply = kc.execute_interactive("import tensorflow", timeout=120)
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_class(prepared: grading.PreparedAssignment, folder: Path, n: int) -> Path:
    """``n`` submissions: the solution, the untouched version and the kept wrong answers."""
    master = release.read_notebook(prepared.master)
    student = release.read_notebook(prepared.student_notebook)
    answers = grading.solution_answers(master)
    variants = [answers, {}]
    if FIXTURE.is_file():
        for spec in yaml.safe_load(FIXTURE.read_text())["submissions"].values():
            variants.append(answers | {k: v["source"] for k, v in spec["answers"].items()})
    folder.mkdir(parents=True)
    for i in range(n):
        nb = grading.make_submission(student, variants[i % len(variants)])
        (folder / f"student{i:02d}.ipynb").write_text(nbformat.writes(nb))
    return folder


def stock_nbgrader_seconds(prepared: grading.PreparedAssignment, folder: Path,
                           course: Path) -> float:
    """Seconds stock ``nbgrader autograde`` takes for the class in ``folder`` (serially)."""
    import shutil

    shutil.copytree(prepared.course, course)
    for notebook in sorted(folder.glob("*.ipynb")):
        target = course / "submitted" / notebook.stem / LESSON
        target.mkdir(parents=True)
        shutil.copyfile(notebook, target / f"{LESSON}.ipynb")
    start = time.perf_counter()
    done = release.run_nbgrader(["autograde", LESSON, "--force"], course_root=course,
                                timeout=7200)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return seconds


def lesson_seconds(profile: str, folder: Path) -> float:
    """Seconds to run the solved student version of lesson 00 top to bottom."""
    from nbclient import NotebookClient

    master = release.read_notebook(release.master_path(LESSON))
    student = release.read_notebook(ROOT / "notebooks" / f"{LESSON}.ipynb")
    nb = grading.make_submission(student, grading.solution_answers(master))
    folder.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("COURSE_PROFILE")
    os.environ["COURSE_PROFILE"] = profile
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute()
        return time.perf_counter() - start
    finally:
        if previous is None:
            os.environ.pop("COURSE_PROFILE", None)
        else:
            os.environ["COURSE_PROFILE"] = previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--cpu", action="store_true", help="also time the cpu-profile run")
    args = parser.parse_args()

    figures: dict[str, object] = {"benchmark": "grading", "lesson": LESSON,
                                  "cores": len(os.sched_getaffinity(0))}
    figures["floor_kernel_plus_tensorflow_s"] = round(kernel_floor(), 2)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        work = Path(scratch)
        start = time.perf_counter()
        prepared = grading.prepare_assignment(LESSON, work / "prepare")
        figures["generate_assignment_s"] = round(time.perf_counter() - start, 1)
        folder = make_class(prepared, work / "class", args.submissions)
        stock = stock_nbgrader_seconds(prepared, folder, work / "stock")
        figures["stock_nbgrader_total_s"] = round(stock, 1)
        figures["stock_nbgrader_s_per_submission"] = round(stock / args.submissions, 2)
        per_submission = {}
        for name, jobs, sandbox in (("unsandboxed_jobs1", 1, False), ("jobs1", 1, True),
                                    ("jobs2", 2, True)):
            start = time.perf_counter()
            result = grading.grade_submissions(folder, LESSON, out_dir=work / name, jobs=jobs,
                                               prepared=prepared, sandbox=sandbox)
            seconds = time.perf_counter() - start
            assert all(g.status == "graded" for g in result.students), grading.format_summary(
                result)
            per_submission[name] = seconds / args.submissions
            figures[f"{name}_total_s"] = round(seconds, 1)
            figures[f"{name}_s_per_submission"] = round(per_submission[name], 2)
            figures[f"{name}_worker_median_s"] = round(
                statistics.median(g.seconds for g in result.students), 2)
        figures["sandbox_overhead"] = round(
            per_submission["jobs1"] / per_submission["unsandboxed_jobs1"] - 1, 3)
        figures["speedup_2_workers"] = round(per_submission["jobs1"] / per_submission["jobs2"], 2)
        figures["jobs2_vs_stock_nbgrader"] = round(stock / args.submissions
                                                   / per_submission["jobs2"], 2)
        figures["smoke_lesson_s"] = round(lesson_seconds("smoke", work / "smoke"), 1)
        if args.cpu:
            figures["cpu_lesson_s"] = round(lesson_seconds("cpu", work / "cpu"), 1)
    figures["submissions"] = args.submissions
    figures["targets"] = {"sandbox_overhead": 0.15, "speedup_2_workers": 1.6,
                          "smoke_lesson_s": 30, "cpu_lesson_s": 300}
    figures["meets_targets"] = (
        figures["sandbox_overhead"] < 0.15 and figures["speedup_2_workers"] >= 1.6
        and figures["smoke_lesson_s"] <= 30
        and figures.get("cpu_lesson_s", 0) <= 300
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
