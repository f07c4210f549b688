#!/usr/bin/env bash
# Per-pull-request databases for AuthKit on Render, from any CI system (GitLab, Buildkite,
# Jenkins, CircleCI, …). GitHub Actions users: see github-actions/preview.yml.
#
#   preview.sh up     NUMBER [SERVICE]   get or create authkit-db-pr-NUMBER and
#                                        authkit-redis-pr-NUMBER, wire them into SERVICE, and
#                                        write their external URLs to .env.preview (mode 600)
#   preview.sh status NUMBER [SERVICE]   show them (exit 1 while missing or not yet available)
#   preview.sh down   NUMBER [SERVICE]   delete exactly those two stores (exit 0 if already gone)
#
# SERVICE defaults to authkit-api-pr-NUMBER: the service that runs the pull request's preview.
# Needs RENDER_API_KEY in the environment and authkit-setup on PATH (pip install authkit-setup).
#
# Run at most one of these per pull request at a time (GitLab: `resource_group: preview-$NUMBER`;
# Buildkite: `concurrency_group`). Two `up` runs that do race still end with one store of each
# kind: the older wins and the newer is deleted.
#
# tests/test_examples.py runs this script against a fake Render API.
set -euo pipefail

usage="usage: preview.sh up|status|down NUMBER [SERVICE]"
action=${1:?$usage}
number=${2:?$usage}
service=${3:-authkit-api-pr-${number}}
preview="pr-${number}"

case "$action" in
  up)
    # basic_256mb: Render allows one free Postgres per workspace, so per-PR databases are paid.
    # The allow lists are open because CI machines have no fixed address; the stores need a
    # password and TLS, and are deleted with `preview.sh down`.
    authkit-setup render --service "$service" --preview "$preview" \
      --postgres-plan basic_256mb \
      --postgres-allow-cidr 0.0.0.0/0 --redis-allow-cidr 0.0.0.0/0 \
      --env-file .env.preview --yes --json > "authkit-${preview}.json"
    # The JSON holds ids and names, never passwords. Later steps: `set -a; . ./.env.preview`.
    echo "preview ${preview}: stores ready, details in authkit-${preview}.json" >&2
    ;;
  status)
    authkit-setup status --preview "$preview" --service "$service"
    ;;
  down)
    authkit-setup teardown --preview "$preview" --service "$service" --yes --json
    rm -f .env.preview "authkit-${preview}.json"
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
