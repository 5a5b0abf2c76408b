"""Background work that runs once across every process of a deployment."""
