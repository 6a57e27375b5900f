"""Services: launches, listings, status, suspend, quotas and GPUs."""
