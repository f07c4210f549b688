"""Production care for a Render setup: migrations, backups, a Blueprint."""
