"""``python -m course_utils.grading --worker JOB.json``: grade one submission (used by ``course grade``)."""

import sys

from course_utils.grading import _worker_main

if len(sys.argv) == 3 and sys.argv[1] == "--worker":
    sys.exit(_worker_main(sys.argv[2:]))
sys.exit("usage: python -m course_utils.grading --worker JOB.json (use `course grade`)")
