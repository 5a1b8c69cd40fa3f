"""``course demo`` (what ``make demo`` runs): the course in one command.

1. the device report (``course doctor``);
2. the reference training run in the ``cpu`` profile (``course train``);
3. the student notebooks regenerated from the masters (``course release``) and a
   bundled class of example submissions graded (``course grade``);
4. a summary a newcomer can read: what ran, what it scored, where to look next.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from course_utils.runtime import profiles


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``course demo``.

    >>> p = argparse.ArgumentParser(); configure_parser(p)
    >>> p.parse_args([]).profile
    'cpu'
    """
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  course demo                       what `make demo` runs (a few minutes)\n"
        "  course demo --profile smoke       the same, with the training run at the smallest size\n"
    )
    parser.add_argument("--profile", default="cpu", choices=sorted(profiles.PROFILES),
                        help="profile of the training run (default: cpu)")
    parser.add_argument("--out", default="runs/demo", metavar="DIR",
                        help="folder for the demo's outputs (default: runs/demo)")


def run_command(args: argparse.Namespace) -> int:
    """Run the demo steps in order and print the summary."""
    from course_utils.reference import TrainConfig, train_reference
    from course_utils.runtime import device, doctor

    out = Path(args.out)
    started = time.perf_counter()
    _heading("1/4  Your machine")
    print(doctor.format_report(device.detect_devices(), profile=args.profile))

    _heading(f"2/4  Reference training run ({args.profile} profile)")
    summary = train_reference(TrainConfig(profile=args.profile, run_dir=out / "reference"))

    _heading("3/4  Releasing the lessons (nbgrader generate_assignment)")
    released = _release_lessons()

    _heading("4/4  Grading a class of example submissions")
    grades_table = _grade_examples(out / "grading")

    _heading("Summary")
    print(summary.describe())
    print(f"\nStudent notebooks: {released}")
    if grades_table:
        print("\nExample class, lesson 00 (nbgrader autograder):")
        print(grades_table)
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s. Next steps:")
    print("  make lab                   open the lessons in JupyterLab (notebooks/)")
    print("  course train --resume      continue a run that was interrupted")
    print("  course grade --help        grade your own class")
    return 0


def _release_lessons() -> str:
    """Regenerate the student notebooks; return one line on what happened."""
    from course_utils.instructor import release

    report = release.release_lessons()
    for lesson, seconds in report.seconds.items():
        print(f"{lesson}: generated in {seconds:.1f} s", flush=True)
    changed = f", {len(report.written)} rewritten" if report.written else ""
    lessons = len(report.seconds)
    return (f"{lessons} lesson{'' if lessons == 1 else 's'} released to notebooks/ ({len(report.unchanged)} already up to "
            f"date{changed}); open them with `make lab`.")


def _grade_examples(out: Path) -> str:
    """Grade the bundled example submissions; return the printed grade table."""
    from course_utils.instructor import grading

    return grading.grade_examples(out)


def _heading(text: str) -> None:
    print(f"\n{'=' * 72}\n{text}\n{'=' * 72}", flush=True)
    sys.stdout.flush()
