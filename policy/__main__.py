"""Entry point of the CrossGuard pack:
`pulumi preview --policy-pack policy --policy-pack-config policy/config/<env>.json`.

The only place a PolicyPack is constructed (constructing one starts the analyzer gRPC server and
blocks). The rules live in `policy/rules/`, listed by `policy/registry.py`.
"""

import sys
from pathlib import Path

# The CLI runs this file with the pack directory as the working directory; make the `policy`
# package importable the same way the repository's tests and platformctl import it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.registry import PACK_NAME, policies  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    policies=policies(),
    # Fail safe without --policy-pack-config: every policy declares its own level (critical and high
    # severity mandatory, see policy/rules/common.py default_enforcement); this pack-wide level only
    # applies to a policy that declares none. policy/config/<env>.json overrides both.
    enforcement_level=EnforcementLevel.ADVISORY,
    description="Guardrails for Kubernetes platforms on AWS (EKS and K3s): control plane, nodes, network, "
    "IAM, workload identity, storage, Karpenter, Helm, tags and protection.",
)
