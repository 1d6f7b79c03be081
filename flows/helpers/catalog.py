"""Read-only snapshot of agencies and services that the engine works with."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from flows.helpers.matching import ServiceMatcher


@dataclass(frozen=True)
class AgencyInfo:
    slug: str
    name: str
    short_name: str
    timezone: str = "Asia/Jakarta"
    aliases: tuple[str, ...] = ()
    name_en: str = ""
    aliases_en: tuple[str, ...] = ()

    def title(self, lang: str) -> str:
        """The full name in the resident's language (Indonesian when no English one is given)."""
        return self.name_en if lang == "en" and self.name_en else self.name


@dataclass(frozen=True)
class ServiceInfo:
    code: str
    name: str
    agency: str  # agency slug
    aliases: tuple[str, ...] = ()
    free_by_law: bool = False
    name_en: str = ""
    aliases_en: tuple[str, ...] = ()

    def title(self, lang: str) -> str:
        """The name in the resident's language (Indonesian when no English one is given)."""
        return self.name_en if lang == "en" and self.name_en else self.name


@dataclass(frozen=True)
class Catalog:
    agencies: tuple[AgencyInfo, ...]
    services: tuple[ServiceInfo, ...]
    # The agency that takes what no listed service covers ("Lainnya / tidak ada di daftar");
    # its first service is where such a complaint is filed. Empty: no such choice is offered.
    default_agency: str = ""
    _by_code: dict[str, ServiceInfo] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_code.update({s.code: s for s in self.services})

    def service(self, code: str) -> ServiceInfo | None:
        return self._by_code.get(code)

    def agency(self, slug: str) -> AgencyInfo | None:
        return next((a for a in self.agencies if a.slug == slug), None)

    def services_of(self, slug: str) -> list[ServiceInfo]:
        return [s for s in self.services if s.agency == slug]

    def other_service(self) -> ServiceInfo | None:
        """Where a complaint about something no listed service covers is filed."""
        if not self.default_agency:
            return None
        services = self.services_of(self.default_agency)
        return services[0] if services else None

    @cached_property
    def matcher(self) -> ServiceMatcher:
        """Every name and alias in both languages; each tagged so the resident's language wins."""

        def names(name: str, aliases: tuple[str, ...], name_en: str,
                  aliases_en: tuple[str, ...]) -> list[str | tuple[str, str]]:
            out: list[str | tuple[str, str]] = [(name, "id"), *((a, "id") for a in aliases)]
            out += [(n, "en") for n in (name_en, *aliases_en) if n]
            return out

        return ServiceMatcher(
            [(s.code, names(s.name, s.aliases, s.name_en, s.aliases_en)) for s in self.services]
            + [(f"@{a.slug}", [a.short_name, *names(a.name, a.aliases, a.name_en, a.aliases_en)])
               for a in self.agencies],
            parents={s.code: f"@{s.agency}" for s in self.services},
        )
