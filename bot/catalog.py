"""The service catalog: a YAML file an operator edits, loaded into the database idempotently."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Agency, Service
from flows.catalog import AgencyInfo, Catalog, ServiceInfo

CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class CatalogError(Exception):
    """A catalog file that cannot be loaded; the message says where and why."""


class ServiceSpec(BaseModel):
    code: str
    name: str = Field(min_length=2, max_length=200)
    aliases: list[str] = Field(default_factory=list)
    free_by_law: bool = False
    # English name and words residents type (matched first for English-speaking residents).
    name_en: str = Field(default="", max_length=200)
    aliases_en: list[str] = Field(default_factory=list)

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not CODE.match(v):
            raise ValueError("code must be 1-32 letters, digits, '-' or '_'")
        return v


class SlaSpec(BaseModel):
    """Time limits of human review in working time (bot/sla.py); omitted keys keep the defaults."""

    model_config = ConfigDict(extra="forbid")

    office_hours: str = "08:00-16:00"
    first_response_hours: float = Field(default=8, gt=0, le=24 * 30)
    resolution_days: float = Field(default=10, gt=0, le=365)
    holidays: list[date] = Field(default_factory=list)
    escalate_survey: Literal["any_one", "grade_d", "both", "off"] = "both"

    def settings(self) -> dict[str, Any]:
        """The keys stored in ``agencies.settings`` (read by bot.cases)."""
        return {"office_hours": self.office_hours, "sla_first_response_hours": self.first_response_hours,
                "sla_resolution_days": self.resolution_days,
                "holidays": [d.isoformat() for d in self.holidays],
                "escalate_survey": self.escalate_survey}

    @model_validator(mode="after")
    def _valid_hours(self) -> SlaSpec:
        from bot.sla import policy_from_settings

        policy_from_settings("Asia/Jakarta", self.settings())  # raises a ValueError naming the key
        return self


class AgencySpec(BaseModel):
    slug: str
    name: str = Field(min_length=2, max_length=200)
    short_name: str = Field(min_length=1, max_length=80)
    timezone: str = "Asia/Jakarta"
    followup_days: int = Field(default=7, ge=1, le=90)
    quiet_start: str = "21:00"
    quiet_end: str = "07:00"
    aliases: list[str] = Field(default_factory=list)
    name_en: str = Field(default="", max_length=200)
    aliases_en: list[str] = Field(default_factory=list)
    sla: SlaSpec = Field(default_factory=SlaSpec)
    services: list[ServiceSpec] = Field(min_length=1)

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not CODE.match(v):
            raise ValueError("slug must be 1-32 letters, digits, '-' or '_'")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use Asia/Jakarta, Asia/Makassar or Asia/Jayapura)") from None
        return v


class CatalogSpec(BaseModel):
    region: str = ""
    # The agency that receives complaints no listed service covers (its first service is used).
    default_agency: str = ""
    agencies: list[AgencySpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_agency_exists(self) -> CatalogSpec:
        if self.default_agency and self.default_agency not in {a.slug for a in self.agencies}:
            raise ValueError(f"default_agency {self.default_agency!r} is not the slug of an agency below")
        return self


def read_catalog(path: Path) -> CatalogSpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"catalog file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    try:
        spec = CatalogSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CatalogError(f"{path}: {where}: {err['msg']}") from None
    codes = [s.code for a in spec.agencies for s in a.services]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise CatalogError(f"{path}: service code used twice: {', '.join(dupes)}")
    return spec


def load_catalog(db: Session, path: Path) -> dict[str, int]:
    """Upsert agencies and services. Returns counts of created/updated rows; twice = no change."""
    spec = read_catalog(path)
    stats = {"created": 0, "updated": 0, "unchanged": 0}
    agencies = {a.slug: a for a in db.scalars(select(Agency))}
    services = {s.code: s for s in db.scalars(select(Service))}

    def apply(row: object, values: dict[str, object], is_new: bool) -> None:
        changed = is_new
        for key, value in values.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
                changed = True
        stats["created" if is_new else "updated" if changed else "unchanged"] += 1

    for a in spec.agencies:
        agency = agencies.get(a.slug)
        is_new = agency is None
        if agency is None:
            agency = Agency(slug=a.slug, settings={})
            db.add(agency)
        apply(
            agency,
            {"name": a.name, "short_name": a.short_name, "timezone": a.timezone,
             "followup_days": a.followup_days, "quiet_start": a.quiet_start,
             "quiet_end": a.quiet_end, "active": True,
             "settings": {**(agency.settings or {}), "aliases": a.aliases, **a.sla.settings(),
                          **_english(a.name_en, a.aliases_en),
                          "default": a.slug == spec.default_agency}},
            is_new,
        )
        db.flush()
        for s in a.services:
            service = services.get(s.code)
            s_new = service is None
            if service is None:
                service = Service(code=s.code)
                db.add(service)
            apply(
                service,
                {"agency_id": agency.id, "name": s.name,
                 "aliases": {"aliases": s.aliases, **_english(s.name_en, s.aliases_en)},
                 "free_by_law": s.free_by_law, "active": True},
                s_new,
            )
    db.flush()
    return stats


def _english(name_en: str, aliases_en: list[str]) -> dict[str, Any]:
    """English names ride in the existing JSON columns (no schema change); omitted when empty."""
    return {k: v for k, v in (("name_en", name_en), ("aliases_en", aliases_en)) if v}


def snapshot(db: Session) -> Catalog:
    """The engine's read-only view of active agencies and services."""
    agencies = db.scalars(select(Agency).where(Agency.active).order_by(Agency.id)).all()
    slug_by_id = {a.id: a.slug for a in agencies}
    services = db.scalars(select(Service).where(Service.active).order_by(Service.id)).all()
    return Catalog(
        agencies=tuple(AgencyInfo(a.slug, a.name, a.short_name, a.timezone,
                                    tuple((a.settings or {}).get("aliases", [])),
                                    str((a.settings or {}).get("name_en", "")),
                                    tuple((a.settings or {}).get("aliases_en", [])))
                         for a in agencies),
        services=tuple(
            ServiceInfo(s.code, s.name, slug_by_id[s.agency_id], tuple(s.aliases.get("aliases", [])),
                        s.free_by_law, str(s.aliases.get("name_en", "")),
                        tuple(s.aliases.get("aliases_en", [])))
            for s in services
            if s.agency_id in slug_by_id
        ),
        default_agency=next((a.slug for a in agencies if (a.settings or {}).get("default")), ""),
    )


def catalog_from_spec(spec: CatalogSpec) -> Catalog:
    """Build the engine's catalog straight from a file (tests, benchmarks)."""
    return Catalog(
        agencies=tuple(AgencyInfo(a.slug, a.name, a.short_name, a.timezone, tuple(a.aliases),
                                  a.name_en, tuple(a.aliases_en))
                         for a in spec.agencies),
        services=tuple(
            ServiceInfo(s.code, s.name, a.slug, tuple(s.aliases), s.free_by_law, s.name_en,
                        tuple(s.aliases_en))
            for a in spec.agencies
            for s in a.services
        ),
        default_agency=spec.default_agency,
    )
