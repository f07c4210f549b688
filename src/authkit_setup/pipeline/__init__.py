"""The render/provision pipeline, one step per module, in order: service, plan, provision,
wait, urls, env, deploy, verify; `run.py` runs them."""
