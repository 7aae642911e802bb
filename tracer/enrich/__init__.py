"""Enrichment: container id from a task's cgroup, container and pod metadata from the runtimes."""
