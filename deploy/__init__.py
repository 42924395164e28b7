"""Running several instances: the nginx configuration in front of them, and a local cluster."""
