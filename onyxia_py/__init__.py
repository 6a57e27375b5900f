"""onyxia-py: a self-service data-science platform, Onyxia's control plane in Python."""
