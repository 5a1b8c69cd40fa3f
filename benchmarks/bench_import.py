"""How long `import course_utils` takes in a fresh interpreter (target <= 0.3 s).

Prints JSON: the median over several fresh processes, beside the interpreter's
own start-up (``python -c pass``) measured in the same run. Also what every notebook
kernel and every graded submission pays before its first cell does anything:
TensorFlow with Keras, and within it ml-dtypes (0.7 took 0.6 s of it, 0.6 takes
0.06 s: pyproject.toml keeps it below 0.7).

    python benchmarks/bench_import.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

REPEATS = 7


def _median_seconds(code: str) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    baseline = _median_seconds("pass")
    package = _median_seconds("import course_utils")
    cli = _median_seconds("import course_utils.instructor.cli; course_utils.instructor.cli.build_parser()")
    # as the notebooks import it: quietly, through the course's helper
    tensorflow = _median_seconds("from course_utils.runtime import tf_setup; tf_setup.import_keras()")
    ml_dtypes = _median_seconds("import ml_dtypes")
    version = subprocess.run([sys.executable, "-c", "import ml_dtypes; print(ml_dtypes.__version__)"],
                             check=True, capture_output=True, text=True).stdout.strip()
    print(json.dumps({
        "benchmark": "import_time",
        "python_startup_s": round(baseline, 4),
        "import_course_utils_s": round(package, 4),
        "import_cost_over_startup_s": round(package - baseline, 4),
        "cli_parser_s": round(cli, 4),
        "import_tensorflow_keras_s": round(tensorflow, 4),
        "import_ml_dtypes_s": round(ml_dtypes, 4),
        "ml_dtypes_version": version,
        "target_s": 0.3,
        "meets_target": package <= 0.3,
    }, indent=2))


if __name__ == "__main__":
    main()
