"""Leader election: which replica runs the background jobs, over a Kubernetes Lease."""
