"""A shared gradebook in PostgreSQL: `course grade --db postgresql://...`.

A real PostgreSQL server runs for the session (``conftest.postgres``: Debian's binaries,
a scratch data folder, see ``_postgres``). Lesson 00's example class, already graded into
the default SQLite gradebook (``conftest.graded_class``), is graded again by the
``course grade`` command into a new PostgreSQL database: every task of every student
gets the same score, and ``nbgrader export`` of that database agrees with the SQLite
run's export. A bad URL or a missing driver fails before any work, in well under a
second, saying what a URL looks like or which extra to install.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import COURSE, LESSONS, ROOT

from course_utils.instructor import grading, release
from course_utils.instructor.grading.gradebook import check_db_url


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def graded_in_postgres(graded_class, postgres, tmp_path_factory):
    """The example class graded by `course grade --db postgresql://...`; (url, out, stdout)."""
    url = postgres.create_database("gradebook")
    out = tmp_path_factory.mktemp("postgres-course") / "assignments"
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    start = time.perf_counter()
    done = subprocess.run(
        [str(bin_dir / "course"), "grade", str(graded_class.submissions),
         "--assignment", LESSONS[0], "--jobs", "2", "--db", url, "--out", str(out),
         "--course", str(COURSE)],
        capture_output=True, text=True, env=env, timeout=1800, check=False)
    print(f"\ncourse grade --db {url}: {time.perf_counter() - start:.0f} s\n{done.stdout}")
    assert done.returncode == 0, done.stdout + done.stderr
    return check_db_url(url), out, done.stdout


@pytest.mark.slow
def test_course_grade_into_postgresql_gives_every_student_the_sqlite_scores(
        graded_class, graded_in_postgres):
    from nbgrader.api import Gradebook

    url, _, _ = graded_in_postgres
    lesson, reported = LESSONS[0], graded_class.result
    with Gradebook(url, graded_class.prepared.course_id) as gb:
        submissions = gb.find_assignment(lesson).submissions
        assert sorted(s.student.id for s in submissions) == sorted(
            g.student for g in reported.students)
        for sub in submissions:
            (nb,) = sub.notebooks
            got = {g.name: (g.manual_score if g.manual_score is not None else g.auto_score)
                   for g in nb.grades}
            want = dict(reported.student(sub.student.id).scores)
            assert got == want, f"{sub.student.id}: PostgreSQL {got}, SQLite {want}"


@pytest.mark.slow
def test_nbgrader_export_of_the_postgresql_gradebook_agrees_with_the_sqlite_one(
        graded_class, graded_in_postgres, tmp_path):
    url, out, _ = graded_in_postgres
    exported = tmp_path / "grades.csv"
    done = release.run_nbgrader(["export", f"--CourseDirectory.db_url={url}",
                                 f"--to={exported}"], course_root=out, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    postgres_rows, sqlite_rows = read_csv(exported), read_csv(graded_class.result.grades_csv)
    assert sorted(postgres_rows) == sorted(sqlite_rows)
    for student, row in postgres_rows.items():
        for column in ("assignment", "raw_score", "score", "max_score"):
            assert row[column] == sqlite_rows[student][column], (student, column)
        assert float(row["raw_score"]) == pytest.approx(
            graded_class.result.student(student).autograded_score)


# ------------------------------------------------------------------- checked at the door


def test_check_db_url_returns_a_url_sqlalchemy_can_use(tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert check_db_url(sqlite) == sqlite
    url = check_db_url("postgresql://grader:secret@db.example:5432/course")
    assert url.startswith("postgresql") and url.endswith("://grader:secret@db.example:5432/course")


@pytest.mark.parametrize(("url", "expected"), [
    ("gradebook.db", "expected a database URL such as postgresql://"),
    ("", "expected a database URL"),
    ("postgres://grader@db.example/course", "PostgreSQL's begin with postgresql://"),
    ("postgresql://grader@db.example", "expected a database name"),
    ("sqlite://", "expected a file for the SQLite gradebook"),
    ("sqlite:////no/such/folder/gradebook.db", "does not exist"),
])
def test_check_db_url_says_what_a_gradebook_url_looks_like(url, expected):
    with pytest.raises(ValueError, match=f"^db_url: .*{expected}") as info:
        check_db_url(url)
    assert "secret" not in str(info.value)


def test_a_missing_postgresql_driver_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(ValueError, match=r"course-utils\[postgres\] @ git\+https://") as info:
        check_db_url("postgresql://grader:secret@db.example/course")
    assert "psycopg" in str(info.value) and "secret" not in str(info.value)


@pytest.mark.timeout(120)  # were the URL checked after preparing the lesson: minutes
@pytest.mark.parametrize("fault", ["bad url", "missing driver"])
def test_course_grade_stops_in_well_under_a_second_on_a_bad_db(fault, tmp_path, monkeypatch,
                                                               capsys):
    (tmp_path / "class").mkdir()  # a class that would be graded, were the database fine
    shutil.copy(ROOT / "notebooks" / f"{LESSONS[0]}.ipynb", tmp_path / "class" / "alan.ipynb")
    url = "postgresql//grader@db.example/course"
    if fault == "missing driver":
        url = "postgresql://grader@db.example/course"
        monkeypatch.setitem(sys.modules, "psycopg", None)
        monkeypatch.setitem(sys.modules, "psycopg2", None)
    parser = argparse.ArgumentParser()
    grading.configure_parser(parser)
    args = parser.parse_args([str(tmp_path / "class"), "--assignment", LESSONS[0], "--db", url,
                              "--out", str(tmp_path / "out"), "--course", str(COURSE)])
    start = time.perf_counter()
    status = grading.run_command(args)
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert status == 2 and "course grade: error: db_url:" in err, err
    assert seconds < 1.0, f"took {seconds:.2f} s to refuse {url!r}"
    assert ("course-utils[postgres]" if fault == "missing driver"
            else "expected a database URL such as postgresql://") in err, err
    assert not (tmp_path / "out").exists(), "work started before the URL was checked"
