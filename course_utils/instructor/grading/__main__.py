"""``python -m course_utils.instructor.grading --worker JOB.json``: grade one submission (used by ``course grade``)."""

import sys

from course_utils.instructor.grading.worker import main

if len(sys.argv) == 3 and sys.argv[1] == "--worker":
    sys.exit(main(sys.argv[2:]))
sys.exit("usage: python -m course_utils.instructor.grading --worker JOB.json (use `course grade`)")
