"""Typed stack configuration: the one place raw `k8s-platform:*` config becomes models.

Every key lives under the `k8s-platform:` namespace of a Pulumi stack file (plus `aws:region`).
Keys are camelCase in YAML, snake_case in Python. `parse_stack_config` returns a `StackConfig`
or raises `ConfigError` listing every problem, each naming its key path
(`k8s-platform:network.podCidr`) and what is allowed. Components receive these models, never
`pulumi.Config`.

Models live in one module per section (network, eks, k3s, addons, identity, karpenter; the optional
EKS data plane in data_plane, EFS in efs); the stack
model and the parser in `stack`. Everything is re-exported here: import from `components.config`.
"""

from components.config.addons import (  # noqa: F401
    KMS_KEY_ARN,
    AddonsConfig,
    AddonToggle,
    CloudControllerManagerConfig,
    EbsCsiConfig,
    LoadBalancerControllerConfig,
    kubernetes_minor,
)
from components.config.auto_mode import (  # noqa: F401
    AUTO_MODE_MAX_NODE_LIFETIME_HOURS,
    BUILT_IN_NODE_POOLS,
    REPLACED_ADDONS,
    EksAutoModeConfig,
    uses_auto_mode,
)
from components.config.base import (  # noqa: F401
    DNS_LABEL,
    IAM_ROLE_ARN,
    INSTANCE_TYPE,
    NAMESPACE,
    ConfigError,
    LogRetentionDays,
    Model,
    _KeyedError,
    dns_label,
    iam_role_arn,
    instance_architecture,
    ipv4_network,
    is_graviton,
    short_dns_label,
)
from components.config.ci import (  # noqa: F401
    CI_ENVIRONMENT,
    CI_RETENTION_DAYS,
    EXPIRY_TAG,
    CiConfig,
    format_expiry,
    parse_expiry,
)
from components.config.cross_account_rules import (  # noqa: F401
    SESSION_POLICY_MAX_CHARS,
    session_policy_json,
)
from components.config.data_plane import (  # noqa: F401
    FargateProfileConfig,
    FargateSelectorConfig,
    PodSecurityGroupConfig,
    PodSecurityGroupRule,
    SecurityGroupPolicyConfig,
)
from components.config.efs import EfsCsiConfig  # noqa: F401
from components.config.eks import (  # noqa: F401
    AUTHENTICATION_MODES,
    EksAccessConfig,
    EksConfig,
    EksEndpointConfig,
    EksLogType,
    EksSystemNodeGroupConfig,
    EksUpgradePolicyConfig,
    NamespaceGrant,
)
from components.config.eks_resilience import (  # noqa: F401
    ControlPlaneScalingConfig,
    ControlPlaneTier,
    NodeRepairConfig,
    ZonalShiftConfig,
    deletion_protection_in_force,
)
from components.config.identity import (  # noqa: F401
    ACM_CLOUDFRONT_CERT,
    IAM_ACTION,
    IAM_POLICY_ARN,
    CrossAccountConfig,
    CrossAccountMode,
    IdentityConfig,
    IssuerConfig,
    WorkloadConfig,
    WorkloadMethod,
    WorkloadPolicies,
    WorkloadStatement,
)
from components.config.k3s import (  # noqa: F401
    K3S_INTERNAL_RANGES,
    K3S_VERSION,
    K3sAgentsConfig,
    K3sApiAccessConfig,
    K3sConfig,
    K3sServersConfig,
    K3sSnapshotsConfig,
)
from components.config.k3s_datastore import K3sDatastoreConfig  # noqa: F401
from components.config.karpenter import (  # noqa: F401
    K8S_QUANTITY,
    KARPENTER_DURATION,
    LABEL_KEY,
    LABEL_VALUE,
    KarpenterBudget,
    KarpenterConfig,
    KarpenterLimits,
    KarpenterNodeClassConfig,
    KarpenterNodePoolConfig,
    KarpenterTaint,
)
from components.config.network import (  # noqa: F401
    ALLOWED_POD_RANGES,
    FlowLogsConfig,
    InterfaceEndpoint,
    NetworkConfig,
)
from components.config.stack import (  # noqa: F401
    EXTERNAL_KEYS,
    REQUIRED_TAGS,
    TOP_LEVEL_KEYS,
    ClusterConfig,
    StackConfig,
    decode_config_values,
    parse_stack_config,
    read_pulumi_config,
)
