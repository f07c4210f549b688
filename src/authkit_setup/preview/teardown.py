"""`teardown`: delete exactly one preview's stores, and unwire them from the service.

Safety rules, each enforced here rather than trusted to the caller:

- Stores are found by exact name (`authkit-db-pr-12`, or Neon's branch `preview/pr-12` in the
  base project) on the chosen provider; a name is compared whole, never as a prefix or suffix,
  so preview `pr-1` never touches `authkit-db-pr-12` and vice versa. A Neon preview deletes
  its branch only, never the project or its default branch.
- A store without the preview suffix (the base `authkit-db` / `authkit-redis`) is deleted only
  with both `include_base` and `yes`; `may_delete` is checked again right before every DELETE.
- `DATABASE_URL` / `REDIS_URL` are removed one key at a time (never the bulk PUT, which replaces
  every variable), and only while they still point at a store being deleted.
- Order: variables first, then stores. A run interrupted in between is finished by a re-run;
  the reverse order could leave a variable pointing at a deleted store that a re-run can no
  longer recognise.
- Already gone is success: a second teardown deletes nothing and exits 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from authkit_setup.ci import OutputValue
from authkit_setup.errors import AuthkitError, PlanConflictError
from authkit_setup.output import Output
from authkit_setup.pipeline.names import belongs_to_preview
from authkit_setup.preview.status import (
    PreviewScope,
    Target,
    connection_info_or_none,
    find_exact,
    lookup_only,
    points_at,
    read_service_env,
    resolve_scope,
    targets_for,
)
from authkit_setup.providers.base import Kind, Store, StoreProvider
from authkit_setup.providers.registry import (
    ProviderSettings,
    default_providers,
    traits_named,
)
from authkit_setup.providers.render import RenderClient

EnvOutcome = Literal["removed", "kept", "absent"]


class TeardownDeclined(AuthkitError):
    """The person at the terminal said no; nothing was changed."""


@dataclass(frozen=True)
class TeardownOptions(PreviewScope):
    """`authkit-setup teardown`'s options: the preview (or base) stores to delete, and how."""

    include_base: bool = False
    yes: bool = False
    dry_run: bool = False


TeardownRequest = TeardownOptions


@dataclass(frozen=True)
class Doomed:
    target: Target
    store: Store
    provider: StoreProvider


@dataclass
class TeardownReport:
    preview: str | None
    deleted: list[Doomed] = field(default_factory=list)
    env: list[tuple[str, EnvOutcome]] = field(default_factory=list)
    already_gone: list[tuple[Target, str]] = field(default_factory=list)
    planned: bool = False

    def github_outputs(self) -> dict[str, OutputValue]:
        """Non-secret results for `$GITHUB_OUTPUT`: the keys `render` writes where they apply
        (per kind the store's name, and its id when this run deleted it), plus the counts."""
        outputs: dict[str, OutputValue] = {"ok": True, "preview": self.preview}
        for doomed in self.deleted:
            kind = doomed.target.kind.value
            outputs.setdefault(f"{kind}_name", doomed.store.name)
            outputs.setdefault(f"{kind}_id", doomed.store.id)
        for target, _provider in self.already_gone:
            outputs.setdefault(f"{target.kind.value}_name", target.name)
            outputs.setdefault(f"{target.kind.value}_id", "")
        outputs["deleted_count"] = len(self.deleted)
        outputs["already_gone_count"] = len(self.already_gone)
        return outputs

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": True,
            "preview": self.preview,
            "deleted": [
                {
                    "kind": d.store.kind.value,
                    "provider": d.store.provider,
                    "name": d.store.name,
                    "id": d.store.id,
                }
                for d in self.deleted
            ],
            "env": [{"key": key, "action": action} for key, action in self.env],
            "already_gone": [
                {"kind": t.kind.value, "provider": provider, "name": t.name}
                for t, provider in self.already_gone
            ],
        }
        if self.planned:
            doc["planned"] = True
        return doc


def may_delete(store: Store, target: Target, opts: TeardownOptions) -> bool:
    """The one rule every deletion passes, checked right before the DELETE."""
    if (
        store.name != target.name
        or store.kind is not target.kind
        or store.provider != target.provider
    ):
        return False
    if target.preview is not None:
        return target.preview == opts.preview and belongs_to_preview(
            store.name, target.preview, target.base, target.provider
        )
    return opts.include_base and opts.yes


def _guard(doomed: Doomed, opts: TeardownOptions) -> None:
    if not may_delete(doomed.store, doomed.target, opts):
        what = (
            f"preview {opts.preview}'s {doomed.target.name}"
            if doomed.target.preview is not None
            else "a base store, which needs --include-base and --yes"
        )
        raise PlanConflictError(
            f"refusing to delete {doomed.store.name} ({doomed.store.id}): it is not {what}",
            hint="nothing more was deleted; this is a bug in authkit-setup, please report it",
        )


def run_teardown(
    client: RenderClient,
    opts: TeardownOptions,
    out: Output,
    *,
    confirm: Callable[[str], bool] | None = None,
    providers: Mapping[Kind, StoreProvider] | None = None,
) -> TeardownReport:
    scope = resolve_scope(client, opts.service, opts.workspace, out=out, missing_service_ok=True)
    chosen = dict(providers or default_providers(ProviderSettings(out=out, render_client=client)))
    svc = scope.service
    lookup_only(chosen, scope, (lambda key: client.env_var(svc.id, key)) if svc else None)
    targets = targets_for(
        opts.preview,
        opts.db_name,
        opts.redis_name,
        include_base=opts.include_base,
        postgres=chosen[Kind.POSTGRES].name,
        redis=chosen[Kind.REDIS].name,
    )
    report = TeardownReport(opts.preview, planned=opts.dry_run)

    for target in targets:
        provider = chosen[target.kind]
        found = find_exact(provider, target)
        if not found:
            out.step(f"{target.kind.value} {target.name}: already gone")
            report.already_gone.append((target, provider.name))
        for store in found:
            doomed = Doomed(target, store, provider)
            _guard(doomed, opts)
            report.deleted.append(doomed)

    # Which variables still point at a store being deleted: read before anything is deleted.
    removals: list[str] = []
    if scope.service is not None:
        kinds = [t.kind for t in targets]
        current = read_service_env(client, out, scope.service, kinds)
        for kind in dict.fromkeys(kinds):
            key = kind.env_var
            value = current[kind]
            outcome: EnvOutcome = "absent" if value is None else "kept"
            extra: dict[str, str] = {}  # e.g. DIRECT_URL beside a Neon / Supabase DATABASE_URL
            for doomed in report.deleted:
                if doomed.store.kind is kind and value is not None:
                    info = connection_info_or_none(doomed.provider, doomed.store)
                    if points_at(value, doomed.store, info):
                        outcome = "removed"
                        extra.update(info.extra_env if info is not None else {})
            if outcome == "removed":
                removals.append(key)
            elif outcome == "kept":
                out.step(f"{scope.service.name}: {key} points elsewhere; kept")
            report.env.append((key, outcome))
            for extra_key, extra_value in extra.items():
                # Removed only while it is exactly what the deleted store's flow wrote.
                if client.env_var(scope.service.id, extra_key) == extra_value:
                    removals.append(extra_key)
                    report.env.append((extra_key, "removed"))

    if opts.dry_run or (not report.deleted and not removals):
        return report

    if not opts.yes:
        names = ", ".join(d.store.name for d in report.deleted) or "no stores"
        question = f"Delete {names} and all their data" + (
            f", and remove {' and '.join(removals)} from {scope.service.name}"
            if removals and scope.service
            else ""
        )
        if confirm is None or not confirm(question + "?"):
            raise TeardownDeclined(
                "teardown cancelled; nothing was deleted",
                hint="pass --yes to delete without asking",
            )

    if scope.service is not None:
        for key in removals:
            client.delete_env_var(scope.service.id, key)
            out.success(f"{scope.service.name}: {key} removed")
        if removals:
            out.info(
                f"hint: {scope.service.name} keeps the old values until its next deploy "
                "(or delete the preview service too)"
            )
    for doomed in report.deleted:
        _guard(doomed, opts)
        doomed.provider.delete(doomed.store)
        out.success(f"deleted {doomed.store.kind.value} {doomed.store.name} ({doomed.store.id})")
    return report


# -- the `teardown` command's request --------------------------------------------------------


def teardown(
    request: TeardownRequest, out: Output, *, confirm: Callable[[str], bool] | None = None
) -> TeardownReport:
    """Check the request (nothing is deleted on bad input), delete, publish the counts."""
    from authkit_setup.ci import write_outputs
    from authkit_setup.pipeline.names import render_and_preview_stores

    _check(request, out)
    with render_and_preview_stores(out, request) as (client, providers):
        report = run_teardown(client, request, out, confirm=confirm, providers=providers)
    if not report.planned:
        write_outputs(out, report.github_outputs())
    return report


def _check(r: TeardownRequest, out: Output) -> None:
    from authkit_setup.errors import UsageError

    if r.preview is None and not r.include_base:
        raise UsageError(
            "teardown needs --preview NAME: the preview whose stores to delete",
            hint="e.g. authkit-setup teardown --preview pr-123 --yes",
        )
    r.check()
    wheres = (r.postgres or "", r.redis or "")
    if r.include_base and not all(traits_named(name).beside_service for name in wheres):
        raise UsageError(
            "--include-base deletes base stores on Render only",
            hint="delete a Neon / Supabase / Upstash base store in its own console",
        )
    if r.include_base and not r.yes:
        raise UsageError(
            f"--include-base also deletes the base stores {r.db_name} and {r.redis_name}: "
            "pass --yes as well"
        )
    if not r.yes and not r.dry_run and not out.can_prompt:
        raise UsageError(
            "teardown deletes stores and all their data: pass --yes (no terminal to ask)",
            hint="or --dry-run to list what would be deleted",
        )
