"""authkit-setup: PostgreSQL and Redis for AuthKit, provisioned and wired in one command."""

__version__ = "0.1.0"
