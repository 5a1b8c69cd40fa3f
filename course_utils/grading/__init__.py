"""``course grade``: grade a whole class with nbgrader's autograder and gradebook.

Input is either nbgrader's ``submitted/<student>/<assignment>/`` tree (what
``nbgrader collect`` or the formgrader produce) or a flat folder of
``<student>.ipynb`` files and ``<student>.zip`` archives holding one notebook
each. The output folder is itself an nbgrader course root, so the formgrader
can take over for manual grading::

    OUT/
        gradebook.db          the gradebook (or the database given with --db)
        submitted/ autograded/ feedback/<student>/<assignment>/<assignment>.html
        grades.csv            nbgrader's export, one row per student
        task_stats.csv        per graded cell: points, mean, full and zero marks
        score_histogram.png   the class's autograded scores
        grading_report.json   per student: status, seconds, score of every task
        logs/<student>.log    what nbgrader printed for that student

How it runs, and why. nbgrader's gradebook is a database that its autograder
writes to at the start and the end of every submission; SQLite does not take
concurrent writers well, and a submission that hangs or kills its kernel must
not take other students' grades with it. So every submission is graded in its
own throw-away nbgrader course (the course files, a copy of the gradebook made
once by ``generate_assignment``, the one submission) by a separate Python
process that runs nbgrader's ``Autograde`` and ``GenerateFeedback`` converters.
Up to ``jobs`` of them run at once. The parent process alone writes to the
class gradebook: it copies each finished submission's grades and comments in,
one at a time, as they arrive. Every student therefore appears exactly once,
with the grades nbgrader computed, whatever the order the workers finish in.

Faults stay contained: nbgrader's per-cell timeout interrupts an infinite loop
and grading goes on; a wall-clock guard kills a worker (and its kernel) that
runs longer than ``notebook_timeout``; a file that is not a notebook, a kernel
that dies or any other failure gives that student zero, flags the submission
for review and says why. Notebooks run in the ``smoke`` profile.

Examples
--------
.. code-block:: console

    $ course grade submissions/ --assignment 00_workflow --jobs 2 --out runs/grading
"""

from course_utils.grading.assignment import (
    GradingPlan,
    PreparedAssignment,
    make_submission,
    prepare_assignment,
    read_grading_plan,
    solution_answers,
)
from course_utils.grading.cli import configure_parser, run_command
from course_utils.grading.grader import grade_examples, grade_submissions, make_example_class
from course_utils.grading.reports import format_summary, plot_score_histogram
from course_utils.grading.results import STATUSES, GradeResult, StudentGrade, TaskStats
from course_utils.grading.submissions import STUDENT_ID_PATTERN, Submission, find_submissions
from course_utils.grading.worker import NOTEBOOK_TIMEOUT

__all__ = [
    "NOTEBOOK_TIMEOUT", "STATUSES", "STUDENT_ID_PATTERN", "GradeResult", "GradingPlan",
    "PreparedAssignment", "StudentGrade", "Submission", "TaskStats", "configure_parser",
    "find_submissions", "format_summary", "grade_examples", "grade_submissions",
    "make_example_class", "make_submission", "plot_score_histogram", "prepare_assignment",
    "read_grading_plan", "run_command", "solution_answers",
]
