"""k8s-platform components: ComponentResources and the pure renderers they wire."""
