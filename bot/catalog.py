"""The service catalog: a YAML file an operator edits, loaded into the database idempotently.

Every field is validated when the file is read, before anything is written: a bad value is
refused with one line naming the file, the agency and the field. Rows that got into the
database some other way are read at run time through :func:`agency_zone`,
:func:`agency_quiet_hours`, :func:`agency_followup_days` and :func:`agency_ikm_weights`, which
fall back to the defaults (one log line per agency and value) so one agency's bad data never
stops another's work.

It also builds the engine's read-only view of the catalog (:func:`snapshot` from the database,
:func:`catalog_from_spec` from a file): the pure engine in flows/ knows agencies and services
only through that :class:`flows.helpers.catalog.Catalog`, never through the storage.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.models import Agency, Service
from bot.worktime import (
    DEFAULT_OFFICE_HOURS,
    format_office_hours,
    parse_day_off,
    parse_office_hours,
    policy_from_settings,
)
from flows.helpers.catalog import AgencyInfo, Catalog, ServiceInfo
from flows.helpers.skm import CATEGORIES

log = logging.getLogger(__name__)
CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
DEFAULT_ZONE = "Asia/Jakarta"
DEFAULT_QUIET = ("21:00", "07:00")
DEFAULT_FOLLOWUP_DAYS = 7
MAX_FOLLOWUP_DAYS = 90
# The official weightings of the IKM (bot/reports/ikm.py WEIGHTS); the first is the default.
IKM_WEIGHTS = ("exact", "0.111", "0.11")
OPTIONAL_SETTINGS = ("digest_time", "ikm_weights")
MAX_ONCE_HOURS = 24 * 366


def valid_zone(value: object) -> bool:
    """An IANA zone Python knows (Asia/Jakarta, Asia/Makassar, Asia/Jayapura...)."""
    if not isinstance(value, str) or not value or value != value.strip():
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def valid_hhmm(value: object) -> bool:
    """A 24-hour "HH:MM" with two-digit hours, as the catalog writes it."""
    return isinstance(value, str) and bool(HHMM.match(value))


def _hhmm(v: str) -> str:
    if not valid_hhmm(v):
        raise ValueError(f"must be a time HH:MM between 00:00 and 23:59, got {v!r}")
    return v


class CatalogError(Exception):
    """A catalog file that cannot be loaded; the message says where and why."""


class ServiceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    name: str = Field(min_length=2, max_length=200)
    aliases: list[str] = Field(default_factory=list)
    free_by_law: bool = False
    # English name and words residents type (matched first for English-speaking residents).
    name_en: str = Field(default="", max_length=200)
    aliases_en: list[str] = Field(default_factory=list)
    # SKM (PermenPANRB 14/2017): the service's users per period, for the Krejcie-Morgan minimum
    # sample (bot/reports/sample.py), and how often one resident may rate it: "day" (the local
    # day, the default) or a number of hours.
    population: int | None = Field(default=None, ge=1, le=100_000_000)
    population_per: Literal["year", "semester", "quarter", "month", "week"] = "year"
    survey_once_per: str = "day"
    active: bool = True  # false (or left out of the file): retired, its history stays

    @field_validator("survey_once_per", mode="before")
    @classmethod
    def _once_per(cls, v: object) -> str:
        if isinstance(v, bool) or not (v == "day" or (isinstance(v, int) and 1 <= v <= MAX_ONCE_HOURS)):
            raise ValueError(f'survey_once_per must be "day" or a number of hours 1-{MAX_ONCE_HOURS}, got {v!r}')
        return str(v)

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not CODE.match(v):
            raise ValueError("code must be 1-32 letters, digits, '-' or '_'")
        return v


class CategorySla(BaseModel):
    """One complaint category's own limits (an Ombudsman category id such as ``pungli``);
    an omitted key keeps the agency's limit."""

    model_config = ConfigDict(extra="forbid")

    first_response_hours: float | None = Field(default=None, gt=0, le=24 * 30)
    resolution_days: float | None = Field(default=None, gt=0, le=365)

    def settings(self) -> dict[str, float]:
        """The keys that override the agency's ``sla_*`` settings for this category."""
        out: dict[str, float] = {}
        if self.first_response_hours is not None:
            out["sla_first_response_hours"] = self.first_response_hours
        if self.resolution_days is not None:
            out["sla_resolution_days"] = self.resolution_days
        return out


class SlaSpec(BaseModel):
    """Time limits of human review in working time (bot/worktime.py); omitted keys keep the defaults.

    At the top of the catalog it is the regency's rule for every agency; an agency's own ``sla``
    changes single keys, and its ``holidays`` add to the regency's (:meth:`CatalogSpec.sla_for`).
    """

    model_config = ConfigDict(extra="forbid")

    # "08:00-16:00" (Monday to Friday) or per weekday: {"mon-thu": "07:30-16:00",
    # "fri": "07:30-11:30, 13:00-16:30"}; days left out are closed.
    office_hours: str | dict[str, str] = DEFAULT_OFFICE_HOURS
    first_response_hours: float = Field(default=8, gt=0, le=24 * 30)
    resolution_days: float = Field(default=10, gt=0, le=365)
    holidays: list[date | str] = Field(default_factory=list)  # local days: 2026-12-25 or "10-19" yearly
    national_holidays: bool = True  # Indonesia's public holidays (the `holidays` package)
    cuti_bersama: bool = True  # false: the office works on cuti bersama days
    escalate_survey: Literal["any_one", "grade_d", "both", "off"] = "both"
    # Limits per complaint category, e.g. {"pungli": {"first_response_hours": 4}}; the keys are
    # the ids of flows.helpers.skm.CATEGORIES. Complaints of other categories (and cases that
    # are not complaints) use the limits above.
    categories: dict[str, CategorySla] = Field(default_factory=dict)

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: dict[str, CategorySla]) -> dict[str, CategorySla]:
        unknown = sorted(set(v) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown complaint categor{'y' if len(unknown) == 1 else 'ies'} "
                             f"{', '.join(unknown)} (use {', '.join(CATEGORIES)})")
        return v

    @field_validator("office_hours", mode="before")
    @classmethod
    def _office_hours(cls, v: object) -> object:
        week = parse_office_hours(v)  # SlaConfigError is a ValueError: one line naming the field
        return v.strip() if isinstance(v, str) else format_office_hours(week)

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays(cls, v: object) -> object:
        if v is None:
            return []
        if isinstance(v, str | bytes) or not isinstance(v, list):
            raise ValueError("expected a list of dates (YYYY-MM-DD) or yearly days (MM-DD)")
        days = [parse_day_off(x) for x in v]
        return list(dict.fromkeys(d if isinstance(d, date) else f"{d[0]:02d}-{d[1]:02d}" for d in days))

    def settings(self) -> dict[str, Any]:
        """The keys stored in ``agencies.settings`` (read by bot.desk.cases)."""
        return {"office_hours": self.office_hours, "sla_first_response_hours": self.first_response_hours,
                "sla_resolution_days": self.resolution_days,
                "holidays": [d.isoformat() if isinstance(d, date) else d for d in self.holidays],
                "national_holidays": self.national_holidays, "cuti_bersama": self.cuti_bersama,
                "escalate_survey": self.escalate_survey,
                "sla_categories": {c: lim.settings() for c, lim in self.categories.items()
                                   if lim.settings()}}

    @model_validator(mode="after")
    def _valid_hours(self) -> SlaSpec:
        policy_from_settings("Asia/Jakarta", self.settings())  # raises a ValueError naming the key
        return self


class AgencySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str
    name: str = Field(min_length=2, max_length=200)
    short_name: str = Field(min_length=1, max_length=80)
    timezone: str = DEFAULT_ZONE
    followup_days: int = Field(default=DEFAULT_FOLLOWUP_DAYS, ge=1, le=MAX_FOLLOWUP_DAYS)
    quiet_start: str = DEFAULT_QUIET[0]
    quiet_end: str = DEFAULT_QUIET[1]
    digest_time: str | None = None  # local time of the Monday digest; unset: DIGEST_TIME
    ikm_weights: str | None = None  # one of IKM_WEIGHTS as written; unset: exact 1/9
    aliases: list[str] = Field(default_factory=list)
    name_en: str = Field(default="", max_length=200)
    aliases_en: list[str] = Field(default_factory=list)
    sla: SlaSpec = Field(default_factory=SlaSpec)
    services: list[ServiceSpec] = Field(min_length=1)
    active: bool = True  # false (or left out of the file): retired with its services

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _quiet(cls, v: str) -> str:
        return _hhmm(v)

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, v: str | None) -> str | None:
        return None if v is None else _hhmm(v)

    @field_validator("ikm_weights", mode="before")
    @classmethod
    def _ikm_weights(cls, v: object) -> str | None:
        v = v.text if isinstance(v, _Float) else v
        if v is not None and v not in IKM_WEIGHTS:
            raise ValueError(f"must be one of {', '.join(IKM_WEIGHTS)} (written exactly so), got {str(v)!r}")
        return v

    def extra_settings(self) -> dict[str, Any]:
        """Optional keys for ``agencies.settings``; an omitted one is removed on reload."""
        return {"digest_time": self.digest_time, "ikm_weights": self.ikm_weights}

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not CODE.match(v):
            raise ValueError("slug must be 1-32 letters, digits, '-' or '_'")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        if not valid_zone(v):
            raise ValueError(f"unknown time zone {v!r} (use Asia/Jakarta, Asia/Makassar or Asia/Jayapura)")
        return v


class CatalogSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str = ""
    # The agency that receives complaints no listed service covers (its first service is used).
    default_agency: str = ""
    # The regency's working time for every agency (office hours, local days off such as its
    # anniversary); an agency's own ``sla`` changes single keys.
    sla: SlaSpec = Field(default_factory=SlaSpec)
    agencies: list[AgencySpec] = Field(min_length=1)

    def sla_for(self, agency: AgencySpec) -> SlaSpec:
        """The regency's ``sla`` with the keys the agency set; local days off add up."""
        data = self.sla.model_dump()
        data.update(agency.sla.model_dump(include=agency.sla.model_fields_set))
        data["holidays"] = [*self.sla.holidays, *agency.sla.holidays]
        categories = {c: lim.model_dump() for c, lim in self.sla.categories.items()}
        for c, lim in agency.sla.categories.items():  # an agency changes single keys per category
            categories[c] = {**categories.get(c, {}), **lim.model_dump(include=lim.model_fields_set)}
        data["categories"] = categories
        return SlaSpec.model_validate(data)

    @model_validator(mode="after")
    def _default_agency_exists(self) -> CatalogSpec:
        if self.default_agency and self.default_agency not in {a.slug for a in self.agencies}:
            raise ValueError(f"default_agency {self.default_agency!r} is not the slug of an agency below")
        if self.default_agency and not next(a for a in self.agencies if a.slug == self.default_agency).active:
            raise ValueError(f"default_agency {self.default_agency!r} is marked active: false")
        return self


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _where(raw: object, loc: tuple[int | str, ...]) -> str:
    """``agencies.2.quiet_start`` -> ``agency 'samsat': quiet_start`` (the slug when it has one)."""
    if len(loc) >= 2 and loc[0] == "agencies" and isinstance(loc[1], int):
        slug = None
        with contextlib.suppress(TypeError, KeyError, IndexError, AttributeError):
            slug = raw["agencies"][loc[1]].get("slug")  # type: ignore[index]
        who = f"agency {slug!r}" if isinstance(slug, str) else f"agency #{loc[1] + 1}"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{who}: {rest}" if rest else who
    return ".".join(str(p) for p in loc) or "catalog"


class _Float(float):
    text = ""  # the float as written: ``ikm_weights: 0.1110`` must not pass as 0.111


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, with floats that remember their text."""

    def construct_yaml_float(self, node: yaml.ScalarNode) -> _Float:
        value = _Float(super().construct_yaml_float(node))
        value.text = node.value
        return value


_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)


def read_catalog(path: Path) -> CatalogSpec:
    """Read and validate the whole file; raise :class:`CatalogError` with one line otherwise."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except FileNotFoundError:
        raise CatalogError(f"catalog file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not a UTF-8 text file (byte {exc.start}); "
                           "the catalog must be YAML") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {_one_line(str(exc))}") from None
    try:
        spec = CatalogSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = _one_line(err["msg"].removeprefix("Value error, "))
        raise CatalogError(f"{path}: {_where(raw, tuple(err['loc']))}: {msg}") from None
    slugs = [a.slug.lower() for a in spec.agencies]
    dupes = sorted({s for s in slugs if slugs.count(s) > 1})
    if dupes:
        raise CatalogError(f"{path}: agency slug used twice: {', '.join(dupes)}")
    codes = [s.code for a in spec.agencies for s in a.services]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise CatalogError(f"{path}: service code used twice: {', '.join(dupes)}")
    return spec


def load_catalog(db: Session, path: Path) -> dict[str, int]:
    """Upsert agencies and services; retire (``active`` false, never deleted: complaints,
    surveys and the IKM keep them) those the file leaves out or marks ``active: false``;
    one listed again is active again. Returns counts per row: created, updated, unchanged,
    retired; loading twice changes nothing."""
    spec = read_catalog(path)
    stats = {"created": 0, "updated": 0, "unchanged": 0, "retired": 0}
    agencies = {a.slug: a for a in db.scalars(select(Agency))}
    services = {s.code: s for s in db.scalars(select(Service))}

    def apply(row: Agency | Service, values: dict[str, object], is_new: bool) -> None:
        retiring = not is_new and bool(row.active) and not values["active"]
        changed = is_new
        for key, value in values.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
                changed = True
        stats["created" if is_new else "retired" if retiring else "updated" if changed else "unchanged"] += 1

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
             "quiet_end": a.quiet_end, "active": a.active,
             "settings": {**{k: v for k, v in (agency.settings or {}).items()
                             if k not in OPTIONAL_SETTINGS},
                          "aliases": a.aliases, **spec.sla_for(a).settings(),
                          **{k: v for k, v in a.extra_settings().items() if v is not None},
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
                 "free_by_law": s.free_by_law, "active": a.active and s.active,
                 "population": s.population,
                 "population_per": s.population_per if s.population else None,
                 "survey_once_per": None if s.survey_once_per == "day" else s.survey_once_per},
                s_new,
            )
    listed_agencies = {a.slug for a in spec.agencies}
    listed_services = {s.code for a in spec.agencies for s in a.services}
    left_out: list[Agency | Service] = [a for slug, a in agencies.items() if slug not in listed_agencies]
    left_out += [s for code, s in services.items() if code not in listed_services]
    for row in left_out:
        if row.active:  # left out of the file: retired, not deleted
            row.active = False
            stats["retired"] += 1
    db.flush()
    return stats


def _english(name_en: str, aliases_en: list[str]) -> dict[str, Any]:
    """English names ride in the existing JSON columns (no schema change); omitted when empty."""
    return {k: v for k, v in (("name_en", name_en), ("aliases_en", aliases_en)) if v}


def service_title(service: Service, lang: str) -> str:
    """A stored service's name in ``lang``: the English one for English, else (or when it has
    none) the Indonesian one. Messages stored for later (follow-ups, digests) use this."""
    name_en = str((service.aliases or {}).get("name_en", ""))
    return name_en if lang == "en" and name_en else service.name


def snapshot(db: Session) -> Catalog:
    """The engine's read-only view of active agencies and services."""
    agencies = db.scalars(select(Agency).where(Agency.active).order_by(Agency.id)).all()
    slug_by_id = {a.id: a.slug for a in agencies}
    services = db.scalars(select(Service).where(Service.active).order_by(Service.id)).all()
    return Catalog(
        agencies=tuple(AgencyInfo(a.slug, a.name, a.short_name, agency_zone(a),
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
                         for a in spec.agencies if a.active),
        services=tuple(
            ServiceInfo(s.code, s.name, a.slug, tuple(s.aliases), s.free_by_law, s.name_en,
                        tuple(s.aliases_en))
            for a in spec.agencies if a.active
            for s in a.services if s.active
        ),
        default_agency=spec.default_agency,
    )


# ---------------------------------------------------------------- run-time reads

_reported: set[tuple[object, str, str]] = set()


def _fallback(agency: Agency, field: str, value: object, used: object) -> None:
    """One log line per agency, field and bad value; no personal data in it."""
    key = (agency.id, field, repr(value))
    if key not in _reported:
        _reported.add(key)
        log.error("agency %s: bad %s %r in the database, using %r (fix the catalog and reload it)",
                  agency.slug, field, value, used)


def agency_zone(agency: Agency) -> str:
    """The agency's time zone, or Asia/Jakarta when the stored one is unknown."""
    if valid_zone(agency.timezone):
        return agency.timezone
    _fallback(agency, "timezone", agency.timezone, DEFAULT_ZONE)
    return DEFAULT_ZONE


@dataclass(frozen=True)
class QuietHours:
    """An agency's quiet hours in its own zone, already checked."""

    timezone: str
    start: str
    end: str

    def as_tuple(self) -> tuple[str, str, str]:
        """(zone, start, end), the arguments of bot.outbox.followups.in_quiet_hours / quiet_adjust."""
        return self.timezone, self.start, self.end


def agency_quiet_hours(agency: Agency) -> QuietHours:
    """Quiet hours to use for this agency: both ends valid, else the defaults 21:00-07:00."""
    zone = agency_zone(agency)
    start, end = agency.quiet_start, agency.quiet_end
    if not (valid_hhmm(start) and valid_hhmm(end)):
        _fallback(agency, "quiet hours", f"{start}-{end}", "-".join(DEFAULT_QUIET))
        start, end = DEFAULT_QUIET
    return QuietHours(zone, start, end)


def agency_ikm_weights(agency: Agency) -> Literal["exact", "0.111", "0.11"]:
    """The weighting every report uses (digest job and ``bot.py digest`` alike); default exact."""
    value = (agency.settings or {}).get("ikm_weights") or "exact"
    if value not in IKM_WEIGHTS:
        _fallback(agency, "ikm_weights", value, "exact")
    return value if value in IKM_WEIGHTS else "exact"  # type: ignore[return-value]


def sla_settings(settings: dict[str, Any] | None, category: str | None = None) -> dict[str, Any]:
    """The agency's SLA settings with the limits of one complaint category laid over them
    (``sla_categories``, written by :meth:`SlaSpec.settings`); no category: the agency's own."""
    merged = dict(settings or {})
    per_category = merged.pop("sla_categories", None)
    if category and isinstance(per_category, dict) and isinstance(per_category.get(category), dict):
        merged.update(per_category[category])
    return merged


def agency_followup_days(agency: Agency) -> int:
    """Days to the follow-up check-in: the stored value when 1..90, else 7."""
    days = agency.followup_days
    if isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= MAX_FOLLOWUP_DAYS:
        return days
    _fallback(agency, "followup_days", days, DEFAULT_FOLLOWUP_DAYS)
    return DEFAULT_FOLLOWUP_DAYS


def survey_window(stored: str | None) -> int | None:
    """A service's ``survey_once_per`` as hours, or None for the local day (also for a bad value)."""
    if stored and stored.isdigit() and 1 <= int(stored) <= MAX_ONCE_HOURS:
        return int(stored)
    return None
