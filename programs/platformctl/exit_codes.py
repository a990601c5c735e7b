"""Exit codes of platformctl, one per outcome, so scripts can branch on them."""

OK = 0
POLICY_VIOLATION = 1  # a mandatory policy failed
CONFIG_ERROR = 2  # bad stack config, bad arguments, or a missing tool (pulumi CLI)
