"""What the checks return: a :class:`CheckResult` each, and the :class:`PreflightReport` of all.

A check never raises when the model fails it: it says so in its result, with what
was measured, what was expected and what to do about it.

Examples
--------
>>> result = CheckResult("initial loss", True, "2.486", "2.485 +- 0.15", "as expected")
>>> result.passed, result.details
(True, {})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["CheckResult", "PreflightReport"]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: passed or not, what was measured, what was expected.

    ``details`` holds the raw measurements (per parameter, per seed, per layer,
    per step) for plots and further questions. Checks return this; they do not
    raise when the model fails them.
    """

    name: str
    passed: bool
    measured: str
    expected: str
    message: str
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PreflightReport:
    """What :func:`preflight` found: one :class:`CheckResult` per check.

    ``print(report)`` (or :meth:`format`) shows it as a table, followed by
    the message of every failed check.

    Examples
    --------
    >>> ok = CheckResult("initial loss", True, "2.486", "2.485 +- 0.15", "as expected")
    >>> bad = CheckResult("dead units", False, "100% dead in 'fc1'", "< 50% per layer",
    ...                   "layer 'fc1': every unit is dead")
    >>> report = PreflightReport("demo", (ok, bad))
    >>> report.passed, [c.name for c in report.failed]
    (False, ['dead units'])
    >>> print(report.format())  # doctest: +NORMALIZE_WHITESPACE
    preflight of 'demo': 1 of 2 checks passed
    check         result  measured            expected
    ------------  ------  ------------------  ---------------
    initial loss  pass    2.486               2.485 +- 0.15
    dead units    FAIL    100% dead in 'fc1'  < 50% per layer
    <BLANKLINE>
    - dead units: layer 'fc1': every unit is dead
    """

    model_name: str
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that failed, in order."""
        return [check for check in self.checks if not check.passed]

    def __getitem__(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r}; the report has {[c.name for c in self.checks]}")

    def format(self) -> str:
        """The report as a plain-text table, then the message of each failed check."""
        rows = [("check", "result", "measured", "expected")]
        rows += [(c.name, "pass" if c.passed else "FAIL", c.measured, c.expected)
                 for c in self.checks]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [f"preflight of {self.model_name!r}: "
                 f"{len(self.checks) - len(self.failed)} of {len(self.checks)} checks passed"]
        for index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                         .rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        if self.failed:
            lines.append("")
            lines += [f"- {c.name}: {c.message}" for c in self.failed]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()
