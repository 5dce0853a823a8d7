"""Stand-in handler modules for the gateway's tests (the real ones live in handlers/)."""
