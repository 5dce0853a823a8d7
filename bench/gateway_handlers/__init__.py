"""A stand-in for handlers/ that bench/gateway_concurrency.py puts behind the local gateway."""
