"""Grading throughput, side by side with stock nbgrader, in one run (issue 21).

The headline is lesson 00 with 20 submissions (in turn: the reference solution, the
untouched student version and each wrong answer kept for the tests), graded in this order:

- stock ``nbgrader autograde`` (serial, unsandboxed) in a copy of the generated course,
  with no ``COURSE_PROFILE`` of ours: the notebooks run in the profile the course gives
  nbgrader (its ``nbgrader_config.py``, else ``NBGRADER_EXECUTION``'s rule; the output
  names the profile the graded notebooks reported);
- ``course grade --jobs 1`` and ``--jobs 2``, sandboxed (the default), in the ``grading``
  profile ``course grade`` runs notebooks in.

Beside them the floor of one submission: starting a Python kernel and importing
TensorFlow in it, which every graded notebook pays before its first cell. Targets, on two
cores: ``--jobs 2`` at least 4x faster than stock nbgrader, and its time per submission
(wall time over the class) within 2.5x of the floor. With ``--unsandboxed``, also
``course grade --jobs 1 --unsandboxed`` beside the sandboxed ``--jobs 1`` on the same
submissions: the sandbox's overhead per submission (sandboxed over unsandboxed time, less
one) must stay under 15 % (issue 16); the summary prints it against that target.

Then the same figures per lesson (``--lessons``, every lesson by default) on fewer
submissions each (``--per-lesson``): stock and ``--jobs 2`` per submission, and the solved
lesson run top to bottom with nbclient in the ``smoke`` and ``grading`` profiles (what the
profile saves, without nbgrader). The headline lesson's row reuses the headline's runs.

Beside the wall times (``*_s``) of stock nbgrader and of the nbclient runs, the CPU
time of the processes they started (``*_cpu_s``, kernels included; a sandboxed kernel's
is not reported back to its parent, so ``course grade`` gets none): on a machine shared
with other work the wall times swell with the load and the CPU times much less, so they
tell whether a difference is real. Prints one JSON object per lesson as it is measured,
then the headline.

    python benchmarks/bench_grading.py                          # the whole run (~40 min, 2 cores)
    python benchmarks/bench_grading.py --per-lesson 0           # the headline only
    python benchmarks/bench_grading.py --submissions 6 --lessons 03_momentum   # a quick look
    python benchmarks/bench_grading.py --stock-also grading     # also stock nbgrader in the
                                                                # grading profile
    python benchmarks/bench_grading.py --unsandboxed            # also what the sandbox costs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from course_utils.instructor import grading, release
from course_utils.runtime import profiles

HEADLINE = "00_workflow"
ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "assignments"
TARGET_VS_STOCK = 4.0   # course grade --jobs 2 at least this much faster than stock nbgrader
TARGET_VS_FLOOR = 2.5   # seconds per submission at most this many floors
TARGET_SANDBOX_OVERHEAD = 0.15  # sandboxed --jobs 1 at most this much slower per submission


class Clock:
    """Wall and CPU seconds of a block: ``with Clock() as c: ...; c.wall, c.cpu``.

    The CPU time is that of the child processes the block started and waited for
    (with their own children, kernels included), as the kernel counts it.
    """

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), _children_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = _children_cpu() - self._cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    lesson = prepared.assignment
    master = release.read_notebook(prepared.master)
    student = release.read_notebook(prepared.student_notebook)
    answers = grading.solution_answers(master)
    variants = [answers, {}]
    fixture = ROOT / "tests" / "submissions" / lesson / "wrong_answers.yml"
    if fixture.is_file():
        for spec in yaml.safe_load(fixture.read_text())["submissions"].values():
            variants.append(answers | {k: v["source"] for k, v in spec["answers"].items()})
    folder.mkdir(parents=True)
    for i in range(n):
        nb = grading.make_submission(student, variants[i % len(variants)])
        (folder / f"student{i:02d}.ipynb").write_text(nbformat.writes(nb))
    return folder


def profiles_seen(notebooks: list[Path]) -> list[str]:
    """The profiles graded notebooks ran in, as their set-up cells printed them."""
    seen = set()
    for path in notebooks:
        nb = release.read_notebook(path)
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                       for o in c.get("outputs", []))
        seen.update(re.findall(r"^Profile (\w+):", text, flags=re.MULTILINE) or ["?"])
    return sorted(seen)


def stock_nbgrader(prepared: grading.PreparedAssignment, folder: Path, course: Path,
                   profile: str | None = None) -> tuple[Clock, list[str]]:
    """How long stock ``nbgrader autograde`` takes for the class in ``folder``, and the
    profiles its notebooks ran in. ``profile`` sets ``COURSE_PROFILE``; ``None`` removes it,
    so nbgrader's ``NBGRADER_EXECUTION`` decides, as in a course that sets nothing."""
    lesson = prepared.assignment
    shutil.copytree(prepared.course, course)
    for notebook in sorted(folder.glob("*.ipynb")):
        target = course / "submitted" / notebook.stem / lesson
        target.mkdir(parents=True)
        shutil.copyfile(notebook, target / f"{lesson}.ipynb")
    env = release.nbgrader_environment(COURSE_PROFILE=profile)
    with Clock() as clock:
        done = release.run_nbgrader(["autograde", lesson, "--force"], course_root=course,
                                    env=env, timeout=7200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return clock, profiles_seen(sorted((course / "autograded").glob(f"*/{lesson}/*.ipynb")))


def course_grade(prepared: grading.PreparedAssignment, folder: Path, out: Path, *, jobs: int,
                 sandbox: bool) -> tuple[Clock, float, list[str]]:
    """``course grade`` of the class: (its clock, median seconds of one worker, profiles)."""
    lesson = prepared.assignment
    with Clock() as clock:
        result = grading.grade_submissions(folder, lesson, out_dir=out, jobs=jobs,
                                           prepared=prepared, sandbox=sandbox)
    assert all(g.status == "graded" for g in result.students), grading.format_summary(result)
    worker = statistics.median(g.seconds for g in result.students)
    return clock, worker, profiles_seen(sorted((out / "autograded").glob(f"*/{lesson}/*.ipynb")))


def notebook_run(lesson: str, profile: str, folder: Path) -> Clock:
    """How long the solved student version of ``lesson`` runs top to bottom (nbclient)."""
    from nbclient import NotebookClient

    master = release.read_notebook(release.master_path(lesson, COURSE))
    student = release.read_notebook(ROOT / "notebooks" / f"{lesson}.ipynb")
    nb = grading.make_submission(student, grading.solution_answers(master))
    work = folder / f"nbclient-{lesson}-{profile}"
    work.mkdir(parents=True)
    previous = os.environ.get("COURSE_PROFILE")
    os.environ["COURSE_PROFILE"] = profile
    try:
        with Clock() as clock:
            NotebookClient(nb, timeout=900, kernel_name="python3",
                           resources={"metadata": {"path": str(work)}}).execute()
        return clock
    finally:
        if previous is None:
            os.environ.pop("COURSE_PROFILE", None)
        else:
            os.environ["COURSE_PROFILE"] = previous


def measure(lesson: str, n: int, work: Path, floor: float, *, jobs1: bool = False,
            stock_also: tuple[str, ...] = (), unsandboxed: bool = False) -> dict[str, object]:
    """Every figure of one lesson graded ``n`` times, side by side."""
    row: dict[str, object] = {"lesson": lesson, "submissions": n}
    start = time.perf_counter()
    prepared = grading.prepare_assignment(lesson, work / "prepare", course_root=COURSE)
    row["generate_assignment_s"] = round(time.perf_counter() - start, 1)  # 0 when cached
    folder = make_class(prepared, work / "class", n)
    clocks: dict[str, Clock] = {}
    clocks["stock"], row["stock_profiles"] = stock_nbgrader(prepared, folder, work / "stock")
    for profile in stock_also:
        clocks[f"stock_{profile}"], row[f"stock_{profile}_profiles"] = stock_nbgrader(
            prepared, folder, work / f"stock-{profile}", profile)
    runs = [("jobs1", 1, True)] if jobs1 else []
    runs += [("unsandboxed_jobs1", 1, False)] if unsandboxed else []
    for name, jobs, sandbox in [*runs, ("jobs2", 2, True)]:
        clocks[name], worker, row[f"{name}_profiles"] = course_grade(
            prepared, folder, work / name, jobs=jobs, sandbox=sandbox)
        row[f"{name}_worker_median_s"] = round(worker, 2)
    per_sub = {name: clock.wall / n for name, clock in clocks.items()}
    for name, clock in clocks.items():
        row[f"{name}_s_per_submission"] = round(clock.wall / n, 2)
        if name.startswith(("stock", "unsandboxed")):  # sandboxed kernels' CPU is not seen
            row[f"{name}_cpu_s_per_submission"] = round(clock.cpu / n, 2)
    row["jobs2_speedup_vs_stock"] = round(per_sub["stock"] / per_sub["jobs2"], 2)
    row["jobs2_per_submission_vs_floor"] = round(per_sub["jobs2"] / floor, 2)
    for profile in stock_also:
        row[f"jobs2_speedup_vs_stock_{profile}"] = round(
            per_sub[f"stock_{profile}"] / per_sub["jobs2"], 2)
    if jobs1:
        row["speedup_2_workers"] = round(per_sub["jobs1"] / per_sub["jobs2"], 2)
    if unsandboxed:  # the same submissions, one worker each way, side by side
        row["sandbox_overhead"] = round(per_sub["jobs1"] / per_sub["unsandboxed_jobs1"] - 1, 3)
        row["sandbox_overhead_worker_median"] = round(
            row["jobs1_worker_median_s"] / row["unsandboxed_jobs1_worker_median_s"] - 1, 3)
    for profile in ("smoke", "grading"):
        clock = notebook_run(lesson, profile, work)
        row[f"notebook_{profile}_s"] = round(clock.wall, 1)
        row[f"notebook_{profile}_cpu_s"] = round(clock.cpu, 1)
    row["load_average"] = round(os.getloadavg()[0], 1)
    return row


def sandbox_verdict(row: dict[str, object]) -> str:
    """The sandbox's overhead per submission of a :func:`measure` row, against the target.

    >>> sandbox_verdict({"sandbox_overhead": 0.09, "jobs1_s_per_submission": 21.8,
    ...                  "unsandboxed_jobs1_s_per_submission": 20.0,
    ...                  "sandbox_overhead_worker_median": 0.07})
    '+9.0% per submission (sandboxed --jobs 1 21.8 s, unsandboxed 20.0 s; median worker +7.0%); target: under 15%: met'
    """
    overhead = float(row["sandbox_overhead"])
    worker = float(row["sandbox_overhead_worker_median"])
    return (f"{overhead:+.1%} per submission (sandboxed --jobs 1 "
            f"{row['jobs1_s_per_submission']} s, unsandboxed "
            f"{row['unsandboxed_jobs1_s_per_submission']} s; median worker {worker:+.1%}); "
            f"target: under {TARGET_SANDBOX_OVERHEAD:.0%}: "
            + ("met" if overhead < TARGET_SANDBOX_OVERHEAD else "MISSED"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20,
                        help=f"submissions of the headline lesson, {HEADLINE} (default 20)")
    parser.add_argument("--lessons", nargs="+", default=None, metavar="LESSON",
                        help="lessons measured one by one (default: every lesson)")
    parser.add_argument("--per-lesson", type=int, default=4, metavar="N",
                        help="submissions per lesson (default 4; 0: the headline only)")
    parser.add_argument("--stock-also", nargs="+", default=[], metavar="PROFILE",
                        choices=sorted(profiles.PROFILES),
                        help="also time stock nbgrader with COURSE_PROFILE=PROFILE")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="also time course grade --jobs 1 --unsandboxed, and print the "
                             "sandbox's overhead per submission against the 15 %% target")
    args = parser.parse_args()
    for name in ("submissions", "per_lesson"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')}: expected a count >= 0")
    lessons = args.lessons or release.list_lessons(COURSE)
    os.environ.pop(grading.worker.PROFILE_VARIABLE, None)  # course grade's own default

    cores = len(os.sched_getaffinity(0))
    floor = kernel_floor()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        work = Path(scratch)
        headline = None
        if args.submissions:
            headline = measure(HEADLINE, args.submissions, work / HEADLINE, floor, jobs1=True,
                               stock_also=tuple(args.stock_also),
                               unsandboxed=args.unsandboxed)
            print(json.dumps(headline), flush=True)
        for lesson in lessons if args.per_lesson else []:
            if lesson == HEADLINE and headline is not None:
                rows.append(headline)
                continue
            rows.append(measure(lesson, args.per_lesson, work / lesson, floor))
            print(json.dumps(rows[-1]), flush=True)
    targets: dict[str, float] = {"jobs2_speedup_vs_stock": TARGET_VS_STOCK,
                                 "jobs2_per_submission_vs_floor": TARGET_VS_FLOOR}
    summary: dict[str, object] = {
        "benchmark": "grading", "cores": cores,
        "floor_kernel_plus_tensorflow_s": round(floor, 2), "targets": targets,
    }
    if headline is not None:
        summary["headline"] = headline
        meets = (headline["jobs2_speedup_vs_stock"] >= TARGET_VS_STOCK
                 and headline["jobs2_per_submission_vs_floor"] <= TARGET_VS_FLOOR)
        if "sandbox_overhead" in headline:
            targets["sandbox_overhead"] = TARGET_SANDBOX_OVERHEAD
            summary["sandbox_overhead_vs_target"] = sandbox_verdict(headline)
            meets = meets and float(headline["sandbox_overhead"]) < TARGET_SANDBOX_OVERHEAD
        summary["meets_targets"] = meets
    summary["per_lesson"] = [
        {k: r[k] for k in ("lesson", "submissions", "stock_s_per_submission",
                           "jobs2_s_per_submission", "jobs2_speedup_vs_stock",
                           "jobs2_per_submission_vs_floor", "stock_profiles",
                           "stock_cpu_s_per_submission", "notebook_smoke_s",
                           "notebook_grading_s", "notebook_smoke_cpu_s",
                           "notebook_grading_cpu_s")} for r in rows]
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
