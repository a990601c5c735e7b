"""k8s-platform CrossGuard policy pack (rules in `policy.rules`, registry in `policy.registry`)."""
