"""``course grade``: grade a whole class with nbgrader's autograder, in a sandbox.

Input is either nbgrader's ``submitted/<student>/<assignment>/`` tree (what
``nbgrader collect`` or the Formgrader produce) or a flat folder of
``<student>.ipynb`` files and ``<student>.zip`` archives holding one notebook
each; it is only read. The output folder is an nbgrader course root, by default
the course itself, so the Formgrader shows what ``course grade`` wrote and takes
over for the written answers::

    OUT/
        gradebook.db                      the gradebook (or the database given with --db)
        submitted/ autograded/ feedback/  <student>/<assignment>/ (notebook, feedback page)
        reports/<assignment>/
            grades.csv                    nbgrader's export: auto + manual = total per student
            task_stats.csv                per graded cell: points, mean, full and zero marks
            score_histogram.png           the class's autograded scores
            grading_report.json           per student: status, seconds, every task's score
            students/<student>.json       one record per graded student (what resumes use)
            logs/<student>.log            what nbgrader printed for that student

How it runs, and why (one module per job):

- :mod:`~course_utils.instructor.grading.submissions` finds the submissions and checks them
  (student ids matched in full, archives size-capped, one file per student);
- :mod:`~course_utils.instructor.grading.integrity` scans each student's code, in this process,
  for reaches into the grading machinery (IPython hooks, shadowed builtins, patched
  modules); such a submission is graded but flagged, its points held for review;
- :mod:`~course_utils.instructor.grading.worker` grades one submission with nbgrader's
  ``Autograde`` in a process of its own, in a throw-away course folder with a copy
  of the gradebook, while the kernel runs in :mod:`~course_utils.instructor.grading.sandbox`
  (bubblewrap: it sees its own notebook, the installed packages read-only and a
  private scratch folder, nothing else; no network; memory, processes, CPU time,
  disk and output bytes limited; every process gone when grading ends);
- :mod:`~course_utils.instructor.grading.feedback` renders the feedback page without the
  hidden tests' source and with the student's HTML and JavaScript neutralised;
- :mod:`~course_utils.instructor.grading.grader` runs up to ``jobs`` workers at once and is
  the only process that writes the gradebook, the output folder and the reports,
  one finished student at a time, so a killed run keeps every finished student
  and ``--rerun resume`` grades the rest; one run per output folder (a lock);
- :mod:`~course_utils.instructor.grading.cluster` sends the same jobs to a Dask cluster instead
  (``--scheduler``): each submission one task, its folder travelling as bytes, retried
  once elsewhere if its machine dies;
- :mod:`~course_utils.instructor.grading.gradebook` and :mod:`~course_utils.instructor.grading.reports`
  hold the gradebook and report code, :mod:`~course_utils.instructor.grading.cli` the command.

Faults stay contained: nbgrader's per-cell timeout interrupts an infinite loop
and grading goes on; a wall-clock guard kills a worker (and its kernel) that
runs longer than ``notebook_timeout``; a file that is not a notebook, a kernel
that dies or any other failure gives that student zero, flags the submission
for review and says why. Notebooks run in the ``grading`` profile
(:mod:`course_utils.runtime.profiles`): the lesson's demonstrations at the least size at
which every cell runs, the tests as always (they never read what the demonstrations
compute), so a grade is the one the ``smoke`` profile gives, sooner;
``COURSE_GRADING_PROFILE`` names another profile.

Examples
--------
>>> from course_utils.instructor import grading
>>> grading.STATUSES
('graded', 'flagged', 'failed', 'timeout', 'invalid')

.. code-block:: console

    $ course grade assignments/submitted --assignment 00_workflow --jobs 2
"""

from course_utils.instructor.grading.assignment import (
    GradingPlan,
    PreparedAssignment,
    make_submission,
    prepare_assignment,
    read_grading_plan,
    solution_answers,
)
from course_utils.instructor.grading.cli import configure_parser, run_command
from course_utils.instructor.grading.grader import (
    grade_examples,
    grade_submissions,
    make_example_class,
)
from course_utils.instructor.grading.reports import format_summary, plot_score_histogram
from course_utils.instructor.grading.results import STATUSES, GradeResult, StudentGrade, TaskStats
from course_utils.instructor.grading.submissions import (
    STUDENT_ID_PATTERN,
    Submission,
    find_submissions,
)
from course_utils.instructor.grading.worker import NOTEBOOK_TIMEOUT

__all__ = [
    "NOTEBOOK_TIMEOUT", "STATUSES", "STUDENT_ID_PATTERN", "GradeResult", "GradingPlan",
    "PreparedAssignment", "StudentGrade", "Submission", "TaskStats", "configure_parser",
    "find_submissions", "format_summary", "grade_examples", "grade_submissions",
    "make_example_class", "make_submission", "plot_score_histogram", "prepare_assignment",
    "read_grading_plan", "run_command", "solution_answers",
]
