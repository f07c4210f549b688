"""`authkit-setup check`: find the URLs (flags, environment, .env, or a Render service) and run
the diagnostics ladder on them."""
