"""`render` and `provision` as a person asks for them: check the request (nothing happens on bad
input), build the providers and the target, run the pipeline (run.py) and publish the result."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from authkit_setup.errors import UsageError
from authkit_setup.inputs import check_deploy_flags, one_of, require_nonempty
from authkit_setup.output import Output
from authkit_setup.pipeline.migrate import check_command
from authkit_setup.pipeline.plan import Wanted
from authkit_setup.pipeline.run import (
    SetupOptions,
    SetupReport,
    publish,
    run_provision,
    run_setup,
)
from authkit_setup.providers.registry import DEFAULT_PROVIDER, ProviderChoice, store_providers


@dataclass(frozen=True)
class StoresRequest(ProviderChoice):
    """What `render` and `provision` both take, as given (field names are the commands'
    parameters): the stores, their names, and how far to go."""

    region: str | None = None
    db_name: str = "authkit-db"
    redis_name: str = "authkit-redis"
    env_file: Path | None = None
    force: bool = False
    dry_run: bool = False
    no_verify: bool = False
    yes: bool = False
    timeout: float = 900.0

    def check_names(self) -> None:
        require_nonempty(
            ("--db-name", self.db_name),
            ("--redis-name", self.redis_name),
            ("--database", self.database),
            ("--db-user", self.db_user),
        )

    def setup_options(self, *, db_name: str, redis_name: str) -> SetupOptions:
        """What both commands ask, as the pipeline takes it (`render` adds the rest), with the
        stores' names (a preview's, for `render --preview`)."""
        return SetupOptions(
            region=self.region,
            wanted=Wanted(
                db_name=db_name,
                redis_name=redis_name,
                database=self.database,
                db_user=self.db_user,
                postgres_version=self.postgres_version,
            ),
            env_file=self.env_file,
            force=self.force,
            dry_run=self.dry_run,
            verify=not self.no_verify,
            yes=self.yes,  # `provision` never asks: accepted so CI scripts can pass it everywhere
            timeout=self.timeout,
        )


@dataclass(frozen=True)
class RenderRequest(StoresRequest):
    """`authkit-setup render`'s options, as given."""

    postgres: str | None = DEFAULT_PROVIDER
    redis: str | None = DEFAULT_PROVIDER
    service: str = ""
    workspace: str | None = None
    postgres_plan: str = "free"
    redis_plan: str = "free"
    maxmemory_policy: str = "noeviction"
    postgres_allow_cidr: tuple[str, ...] | list[str] = ("0.0.0.0/0",)
    redis_allow_cidr: tuple[str, ...] | list[str] | None = None
    no_deploy: bool = False
    wait_deploy: bool = False
    verify_inside: bool = False
    migrate_command: str | None = None
    preview: str | None = None
    github_env: bool = False
    api_key: str | None = None


@dataclass(frozen=True)
class ProvisionRequest(StoresRequest):
    """`authkit-setup provision`'s options, as given."""

    show_secrets: bool = False


def render(
    request: RenderRequest,
    out: Output,
    *,
    confirm: Callable[[str], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SetupReport:
    """Check the request, then the whole pipeline into the service's environment."""
    from authkit_setup.pipeline.names import render_and_preview_stores

    opts, github_env = _render_options(request, out)
    with render_and_preview_stores(out, request) as (client, providers):
        report = run_setup(client, opts, out, confirm=confirm, providers=providers, sleep=sleep)
    report.preview = request.preview
    publish(out, report, github_env=github_env)
    return report


def _render_options(request: RenderRequest, out: Output) -> tuple[SetupOptions, Path | None]:
    """The request checked and normalised, and where --github-env writes; a one-line usage
    error (exit 2) otherwise."""
    from authkit_setup.ci import github_env_path
    from authkit_setup.pipeline.names import free_plan_warning, store_names
    from authkit_setup.providers.render import (
        REGIONS,
        normalize_key_value_plan,
        normalize_policy,
        normalize_postgres_plan,
    )

    r = request
    if r.region is not None:
        one_of(r.region, REGIONS, f"--region {r.region!r} is not a Render region")
    _check_env_file(r.env_file)
    check_deploy_flags(no_deploy=r.no_deploy, wait_deploy=r.wait_deploy)
    if r.no_verify and r.verify_inside:
        raise UsageError("--no-verify and --verify-inside contradict each other")
    if not r.postgres_version.isdigit() or not 11 <= int(r.postgres_version) <= 18:
        raise UsageError(
            f"--postgres-version {r.postgres_version!r}: use a major version from 11 to 18"
        )
    r.check_names()
    postgres, redis = (r.postgres or "").strip().lower(), (r.redis or "").strip().lower()
    names = store_names(r.preview, r.db_name, r.redis_name, postgres=postgres, redis=redis)
    github_env = github_env_path() if r.github_env else None
    pg_plan = normalize_postgres_plan(r.postgres_plan)
    if pg_plan != r.postgres_plan.strip().lower():
        out.info(
            f"--postgres-plan {r.postgres_plan}: Render no longer accepts legacy plans, using {pg_plan}"
        )
    preview_warning = free_plan_warning(r.preview, pg_plan, postgres)
    if preview_warning:
        out.warn(preview_warning)
    shared = r.setup_options(db_name=names.db, redis_name=names.redis)
    opts = replace(
        shared,
        service=r.service,
        workspace=r.workspace,
        wanted=replace(
            shared.wanted,
            names_from_flags=r.preview is None,
            postgres_plan=pg_plan,
            redis_plan=normalize_key_value_plan(r.redis_plan),
            maxmemory_policy=normalize_policy(r.maxmemory_policy),
            postgres_allow=_cidrs(list(r.postgres_allow_cidr), "--postgres-allow-cidr"),
            redis_allow=_cidrs(list(r.redis_allow_cidr or []), "--redis-allow-cidr"),
        ),
        deploy=not r.no_deploy,
        wait_deploy=r.wait_deploy,
        verify_inside=r.verify_inside,
        migrate_command=(
            None
            if r.migrate_command is None
            else check_command(r.migrate_command, "--migrate-command")
        ),
    )
    return opts, github_env


def provision(request: ProvisionRequest, out: Output) -> SetupReport:
    """Check the request, then the pipeline into a .env file (or stdout), without Render."""
    r = request
    if r.postgres is None and r.redis is None:
        raise UsageError(
            "nothing to provision: pass --postgres neon|supabase and/or --redis upstash"
        )
    r.check_names()
    opts = r.setup_options(db_name=r.db_name, redis_name=r.redis_name)
    with store_providers(out, r) as providers:
        report = run_provision(providers, opts, out)
    if r.show_secrets:
        out.reveal(*report.urls().values())
    return report


def _check_env_file(env_file: Path | None) -> None:
    if env_file is not None and (env_file.is_dir() or not env_file.parent.is_dir()):
        what = "is a directory" if env_file.is_dir() else "is in a folder that does not exist"
        raise UsageError(f"--env-file {env_file} {what}", hint="pass the path of a .env file")


def _cidrs(values: list[str], flag: str) -> tuple[str, ...]:
    if [v.lower() for v in values] == ["none"]:
        return ()
    cidrs = []
    for value in values:
        try:
            cidrs.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise UsageError(
                f"{flag} {value!r} is not a CIDR block", hint="use e.g. 203.0.113.7/32 or 0.0.0.0/0"
            ) from None
    return tuple(cidrs)
