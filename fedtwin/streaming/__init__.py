"""The streaming path: scoring engine and service, the live plant, what serves and rollback."""
