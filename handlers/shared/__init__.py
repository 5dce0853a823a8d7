"""What every route group shares: AWS clients, the registry table, errors, idempotency, and
the resolver and Lambda entry point built around each group's routes."""
