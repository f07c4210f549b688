"""The two kinds of store AuthKit needs, and every fact that differs between them, declared once.

`Kind.POSTGRES` and `Kind.REDIS` are strings ("postgres", "redis"), so they are also the JSON
spelling of a kind and the keys of a check's target.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

# The name a `check` result carries (diagnostics.model.Target).
CheckName = Literal["postgres", "redis"]


@dataclass(frozen=True)
class KindFacts:
    env_var: str  # what the app reads: DATABASE_URL / REDIS_URL
    flag: str  # where the store lives: --postgres / --redis
    name_flag: str  # the option that names the store
    title: str  # in people's words
    allow_cidr_flag: str  # Render's IP allow list for this kind
    local_port_flag: str  # `authkit-setup local`'s port option
    check_name: CheckName


class Kind(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"

    @property
    def facts(self) -> KindFacts:
        return _FACTS[self]

    @property
    def env_var(self) -> str:
        return _FACTS[self].env_var

    @property
    def flag(self) -> str:
        return _FACTS[self].flag

    @property
    def name_flag(self) -> str:
        return _FACTS[self].name_flag

    @property
    def display_name(self) -> str:
        return _FACTS[self].title

    @property
    def check_name(self) -> CheckName:
        return _FACTS[self].check_name

    @classmethod
    def checked_as(cls, name: CheckName) -> Kind:
        """The kind a check result is about."""
        return next(kind for kind in cls if kind.check_name == name)


_FACTS = {
    Kind.POSTGRES: KindFacts(
        env_var="DATABASE_URL",
        flag="--postgres",
        name_flag="--db-name",
        title="PostgreSQL",
        allow_cidr_flag="--postgres-allow-cidr",
        local_port_flag="--port-postgres",
        check_name="postgres",
    ),
    Kind.REDIS: KindFacts(
        env_var="REDIS_URL",
        flag="--redis",
        name_flag="--redis-name",
        title="Redis",
        allow_cidr_flag="--redis-allow-cidr",
        local_port_flag="--port-redis",
        check_name="redis",
    ),
}
