"""What one install check found: PASS/WARN/FAIL, the measured value, what was expected, the fix.

    r = Result("level", FAIL, "7.8 deg", "<= 2 deg (warns up to 5 deg)", "The pole leans 7.8 deg; ...")
    verdict([r, ...])  # "FAIL": the worst status;  as_json([r, ...]) -> {"verdict": ..., "checks": [...]}

Statuses: PASS (installed right), WARN (works, but something should be improved or could not be
checked: the installer decides), FAIL (must be fixed before leaving the field). A failed or warned
check always says, in plain words, what is wrong and what to do; a passed one has an empty fix.
"""

from dataclasses import dataclass

from provisioning.errors import ProvisioningError

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
STATUSES = (PASS, WARN, FAIL)  # in order of severity


class CheckError(ProvisioningError):
    """The install check could not run (not: the install is bad); a ProvisioningError like all of provisioning's."""


@dataclass(frozen=True)
class Result:
    name: str  # stable id of the check, e.g. "level"
    status: str  # PASS, WARN or FAIL
    measured: str  # what was measured, with units ("7.8 deg"); "-" when nothing could be
    expected: str  # what a good install gives ("<= 2 deg")
    fix: str = ""  # what is wrong and what to do, in plain words (empty on PASS)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError("status must be one of %s, got %r" % (", ".join(STATUSES), self.status))
        if self.status != PASS and not self.fix:
            raise ValueError("check %s: a %s needs a fix text" % (self.name, self.status))

    def as_dict(self):
        return {"name": self.name, "status": self.status, "measured": self.measured, "expected": self.expected,
                "fix": self.fix}  # fmt: skip


def not_checked(name, why, expected="-"):
    """A WARN for a check that could not be made; ``why`` says what was missing and how to provide it."""
    return Result(name, WARN, "not checked", expected, why)


def worst(statuses):
    """The most severe of ``statuses`` (FAIL for none: nothing was shown to work)."""
    statuses = list(statuses)
    if not statuses:
        return FAIL
    return max(statuses, key=STATUSES.index)


def verdict(results):
    """The overall verdict of an install: the worst of its checks."""
    return worst(r.status for r in results)


def as_json(results):
    """{"verdict": ..., "checks": [{"name", "status", "measured", "expected", "fix"}, ...]}"""
    return {"verdict": verdict(results), "checks": [r.as_dict() for r in results]}
