"""How long `import course_utils` takes in a fresh interpreter (target <= 0.3 s).

Prints JSON: the median over several fresh processes, beside the interpreter's
own start-up (``python -c pass``) measured in the same run.

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
    print(json.dumps({
        "benchmark": "import_time",
        "python_startup_s": round(baseline, 4),
        "import_course_utils_s": round(package, 4),
        "import_cost_over_startup_s": round(package - baseline, 4),
        "cli_parser_s": round(cli, 4),
        "target_s": 0.3,
        "meets_target": package <= 0.3,
    }, indent=2))


if __name__ == "__main__":
    main()
