"""Service matching on a 500-service catalog, against a bare rapidfuzz baseline.

Every typed message at the menu or a "which service?" question runs the matcher, so it must
stay well under a millisecond on a large regency's catalog. Measured in the same run, over
the same names and the same queries:

- baseline: a bare ``rapidfuzz.process.extract`` (WRatio, default processing) over every name
  and alias, which is what matching cost before it looked at words;
- the bundled catalog (20 services) through ``Catalog.matcher``;
- a generated 500-service catalog (50 agencies x 10 services, Indonesian and English names,
  about 12 names each) through ``Catalog.matcher``.

Queries are what residents type: whole aliases, aliases with a typo, aliases inside a
sentence, English names, and words no service has.

    python bench/bench_matching.py                 # 500 services, 2,000 queries
    python bench/bench_matching.py --services 2000 --queries 5000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rapidfuzz import fuzz, process, utils

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.catalog import catalog_from_spec, read_catalog  # noqa: E402
from flows.helpers.catalog import AgencyInfo, Catalog, ServiceInfo  # noqa: E402
from flows.helpers.matching import ServiceMatcher  # noqa: E402

THINGS = ("izin", "surat", "kartu", "akta", "pajak", "retribusi", "rekomendasi", "sertifikat",
          "pendaftaran", "layanan", "bantuan", "pengujian", "legalisir", "perpanjangan",
          "penerbitan", "pencatatan", "pemeriksaan", "pengesahan", "pelaporan", "klaim")
OBJECTS = ("usaha", "bangunan", "reklame", "kendaraan", "nikah", "cerai", "tanah", "air bersih",
           "sampah", "pasar", "ternak", "perikanan", "sekolah", "beasiswa", "puskesmas", "posyandu",
           "jalan", "drainase", "lampu", "makam", "menara", "parkir", "terminal", "angkutan",
           "koperasi", "umkm", "tenaga kerja", "pencari kerja", "penyandang disabilitas", "lansia",
           "anak yatim", "rumah ibadah", "kesenian", "olahraga", "pariwisata", "hotel", "restoran",
           "apotek", "klinik", "laboratorium", "limbah", "lingkungan", "kebakaran", "banjir",
           "bencana", "irigasi", "pupuk", "benih", "hewan", "vaksin")
EN_THINGS = ("permit", "letter", "card", "certificate", "tax", "levy", "recommendation", "licence",
             "registration", "service", "aid", "test", "legalisation", "renewal", "issuance",
             "recording", "inspection", "approval", "report", "claim")
EN_OBJECTS = ("business", "building", "billboard", "vehicle", "marriage", "divorce", "land", "water",
              "waste", "market", "livestock", "fishery", "school", "scholarship", "health post",
              "child health post", "road", "drainage", "street light", "cemetery", "tower", "parking",
              "terminal", "transport", "cooperative", "small business", "labour", "job seeker",
              "disability", "elderly", "orphan", "place of worship", "arts", "sport", "tourism",
              "hotel", "restaurant", "pharmacy", "clinic", "laboratory", "effluent", "environment",
              "fire", "flood", "disaster", "irrigation", "fertiliser", "seed", "animal", "vaccine")
JUNK = ("halo apa kabar", "xyzzy", "jalan rusak depan rumah sudah lama", "sim", "paspor",
        "bpjs kesehatan", "listrik padam", "sinyal hp jelek", "driving licence", "passport office")


def typo(word: str, rng: random.Random) -> str:
    """One letter dropped, doubled or swapped, as thumbs do."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]


def big_catalog(n_services: int) -> Catalog:
    """``n_services`` services in agencies of ten, each with Indonesian and English names."""
    agencies, services = [], []
    for a in range(max(1, n_services // 10)):
        slug = f"dinas-{a}"
        agencies.append(AgencyInfo(slug, f"Dinas {OBJECTS[a % len(OBJECTS)].title()} {a}", f"D{a}",
                                   aliases=(f"dinas {OBJECTS[a % len(OBJECTS)]}",),
                                   name_en=f"{EN_OBJECTS[a % len(EN_OBJECTS)].title()} Office {a}"))
    for i in range(n_services):
        t, o = THINGS[i % len(THINGS)], OBJECTS[(i // len(THINGS)) % len(OBJECTS)]
        et, eo = EN_THINGS[i % len(EN_THINGS)], EN_OBJECTS[(i // len(THINGS)) % len(EN_OBJECTS)]
        suffix = f" {i // (len(THINGS) * len(OBJECTS))}" if i >= len(THINGS) * len(OBJECTS) else ""
        services.append(ServiceInfo(
            f"s{i}", f"{t.title()} {o.title()}{suffix}", f"dinas-{i // 10}",
            aliases=(f"{t} {o}{suffix}", f"{o} {t}{suffix}", f"urus {t} {o}{suffix}",
                     f"{t} {o} baru{suffix}", f"{t} {o} hilang{suffix}", f"cek {t} {o}{suffix}"),
            name_en=f"{eo.title()} {et.title()}{suffix}",
            aliases_en=(f"{eo} {et}{suffix}", f"{et} for {eo}{suffix}", f"new {eo} {et}{suffix}",
                        f"lost {eo} {et}{suffix}")))
    return Catalog(tuple(agencies), tuple(services))


def queries(catalog: Catalog, n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    services = list(catalog.services)
    while len(out) < n:
        svc = rng.choice(services)
        kind = rng.randrange(6)
        if kind == 0:
            out.append((rng.choice(svc.aliases), "id"))
        elif kind == 1:
            words = rng.choice(svc.aliases).split()
            out.append((" ".join(typo(w, rng) for w in words), "id"))
        elif kind == 2:
            out.append((f"saya mau {rng.choice(svc.aliases)} tapi antriannya lama sekali pak", "id"))
        elif kind == 3:
            out.append((rng.choice(svc.aliases_en or (svc.name,)), "en"))
        elif kind == 4:
            out.append((rng.choice(JUNK), "id"))
        else:
            out.append((svc.name.split()[0], "id"))  # one word: several services share it
    return out


def per_query(fn: Callable[[str, str], object], qs: list[tuple[str, str]], rounds: int = 3) -> float:
    """Median over rounds of the mean time per query, in microseconds."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text, lang in qs:
            fn(text, lang)
        results.append((time.perf_counter() - start) / len(qs) * 1e6)
    return statistics.median(results)


def names_of(catalog: Catalog) -> list[str]:
    out = []
    for s in catalog.services:
        out += [s.name, *s.aliases, *([s.name_en] if s.name_en else []), *s.aliases_en]
    for a in catalog.agencies:
        out += [a.name, a.short_name, *a.aliases, *([a.name_en] if a.name_en else []), *a.aliases_en]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()

    bundled = catalog_from_spec(read_catalog(ROOT / "catalog.yaml"))
    big = big_catalog(args.services)
    qs = queries(big, args.queries)
    bundled_qs = [(t, "id") for t in ("ktp", "akte lahir anak saya", "pajk motor", "birth certificate",
                                       "jalan rusak depan rumah", "sim", "pajak", "hospital")] * 50

    print(f"catalog: {len(big.services)} services, {len(big.agencies)} agencies, "
          f"{len(names_of(big))} names; {len(qs)} queries")
    for label, catalog, qset in (("bundled catalog", bundled, bundled_qs), ("generated catalog", big, qs)):
        names = names_of(catalog)
        matcher = catalog.matcher  # built once per catalog load, not per query

        def baseline(text: str, _lang: str, names: list[str] = names) -> object:
            return process.extract(text, names, scorer=fuzz.WRatio, processor=utils.default_process,
                                   limit=len(names))

        def ours(text: str, lang: str, matcher: ServiceMatcher = matcher) -> object:
            return matcher.match(text, lang=lang)

        start = time.perf_counter()
        Catalog(catalog.agencies, catalog.services).matcher  # noqa: B018 - time the build
        build_ms = (time.perf_counter() - start) * 1e3
        base_us = per_query(baseline, qset)
        ours_us = per_query(ours, qset)
        single = sorted(_timed(ours, t, lang) for t, lang in qset[:1000])
        p99 = single[int(len(single) * 0.99) - 1]
        print(f"{label:18} ({len(catalog.services):4} services, {len(names):5} names): "
              f"baseline extract {base_us:7.1f} us/query | matcher {ours_us:6.1f} us/query "
              f"({ours_us / base_us:.3f}x baseline; slowest 1% {p99:6.1f} us+) | index build {build_ms:.1f} ms")
    return 0


def _timed(fn: Callable[[str, str], object], text: str, lang: str, tries: int = 3) -> float:
    """One query's time in microseconds: the fastest of a few tries, so a scheduler pause on a
    busy machine is not counted as the query's cost."""
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        fn(text, lang)
        best = min(best, time.perf_counter() - start)
    return best * 1e6


if __name__ == "__main__":
    raise SystemExit(main())
