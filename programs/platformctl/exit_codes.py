"""Exit codes of platformctl, one per outcome, so scripts can branch on them."""

OK = 0
POLICY_VIOLATION = 1  # a mandatory policy failed
CONFIG_ERROR = 2  # bad stack config, bad arguments, or a missing tool (pulumi CLI, Graphviz dot)
DEPLOY_FAILED = 3  # the engine ran but a resource operation or the program failed
CONCURRENT_UPDATE = 4  # another update holds the stack's lock (still so after the retries)
CREDENTIALS_MISSING = 5  # no cloud credentials, or not logged in to a Pulumi backend
STACK_NOT_FOUND = 6  # the backend has no such stack (create it with `pulumi stack init`)
FLEET_FAILED = 7  # `platformctl fleet`: at least one stack failed (each stack's own code is in the table)
TIMED_OUT = 8  # the run did not finish within its timeout (`fleet --timeout`)
CHECK_WARNINGS = 9  # `platformctl doctor` / `probe`: the worst verdict is warn
CHECK_FAILED = 10  # `platformctl doctor` / `probe`: at least one check or probe failed; `upgrade`: a health check
INTERRUPTED = 130  # Ctrl-C

DESCRIPTIONS = {
    OK: "success",
    POLICY_VIOLATION: "a mandatory policy failed",
    CONFIG_ERROR: "invalid configuration or arguments, or a missing tool",
    DEPLOY_FAILED: "the update failed (resource operation or program error)",
    CONCURRENT_UPDATE: "another update is in progress on the stack",
    CREDENTIALS_MISSING: "cloud credentials or backend login missing",
    STACK_NOT_FOUND: "no such stack in the backend",
    FLEET_FAILED: "at least one stack of the fleet failed",
    TIMED_OUT: "timed out",
    CHECK_WARNINGS: "doctor/probe: the worst verdict is warn",
    CHECK_FAILED: "doctor/probe: a check or probe failed; upgrade: a health check between steps failed",
    INTERRUPTED: "interrupted",
}

# Short names for tables (`platformctl fleet`).
NAMES = {
    OK: "ok",
    POLICY_VIOLATION: "policy",
    CONFIG_ERROR: "config",
    DEPLOY_FAILED: "failed",
    CONCURRENT_UPDATE: "locked",
    CREDENTIALS_MISSING: "credentials",
    STACK_NOT_FOUND: "no-stack",
    FLEET_FAILED: "fleet-failed",
    TIMED_OUT: "timeout",
    CHECK_WARNINGS: "warn",
    CHECK_FAILED: "check-failed",
    INTERRUPTED: "interrupted",
}


def name(code: int) -> str:
    return NAMES.get(code, f"exit-{code}")


def describe(code: int) -> str:
    return DESCRIPTIONS.get(code, f"exit {code}")
