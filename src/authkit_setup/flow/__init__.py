"""The pipeline, one step per module: plan → provision → wait → urls → env → deploy → verify."""
