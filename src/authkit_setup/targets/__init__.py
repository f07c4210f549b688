"""Where the connection URLs go: a Render service's environment, a .env file, $GITHUB_ENV."""
