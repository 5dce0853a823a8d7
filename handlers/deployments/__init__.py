"""Deployments: a version rolled onto its endpoint as a canary, and rollbacks."""
