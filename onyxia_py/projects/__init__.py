"""Projects: personal and group namespaces, their quotas and access."""
