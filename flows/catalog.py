"""Read-only snapshot of agencies and services that the engine works with."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from flows.matching import ServiceMatcher


@dataclass(frozen=True)
class AgencyInfo:
    slug: str
    name: str
    short_name: str
    timezone: str = "Asia/Jakarta"
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceInfo:
    code: str
    name: str
    agency: str  # agency slug
    aliases: tuple[str, ...] = ()
    free_by_law: bool = False


@dataclass(frozen=True)
class Catalog:
    agencies: tuple[AgencyInfo, ...]
    services: tuple[ServiceInfo, ...]
    _by_code: dict[str, ServiceInfo] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_code.update({s.code: s for s in self.services})

    def service(self, code: str) -> ServiceInfo | None:
        return self._by_code.get(code)

    def agency(self, slug: str) -> AgencyInfo | None:
        return next((a for a in self.agencies if a.slug == slug), None)

    def services_of(self, slug: str) -> list[ServiceInfo]:
        return [s for s in self.services if s.agency == slug]

    @cached_property
    def matcher(self) -> ServiceMatcher:
        return ServiceMatcher(
            [(s.code, (s.name, *s.aliases)) for s in self.services]
            + [(f"@{a.slug}", (a.name, a.short_name, *a.aliases)) for a in self.agencies],
            parents={s.code: f"@{s.agency}" for s in self.services},
        )
