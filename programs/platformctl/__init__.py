"""platformctl: preview/deploy the k8s-platform stacks (offline under mocks, or through the Automation API)."""
