"""Open data over real HTTP on SQLite and PostgreSQL: /data files and Open311 GeoReport v2.

A known set of answers and complaints is stored; the files must give exactly the figures the
IKM arithmetic gives for those answers, withhold every figure from 1-4 people, never list a
confidential complaint, publish coordinates only with consent, and answer from the cache
without a statement.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, select

from bot.app import App
from bot.reports import ikm
from bot.storage.models import Case, Complaint, Service
from bot.web.opendata import figures
from bot.web.server import build_web_app
from tests.conftest import FakeClock
from tests.digest_data import add_complaint, add_response

KTP: list[list[int | None]] = [
    [4, 4, 3, 4, 3, 4, 4, 3, 4],
    [3, 3, 3, 2, 3, 4, 3, 3, None],
    [4, 3, 4, 4, 4, 3, 4, 4, 4],
    [2, 3, 3, 3, 2, 3, 3, 2, None],
    [4, 4, 4, 4, 4, 4, 4, 4, 3],
    [3, None, 3, 3, 3, 3, 4, 3, None],
]
BOUNDARY_Q4: list[int | None] = [1, 2, 2, 2, 2, 2, 2, 2, 2]  # 2026-10-01 00:30 WIB, still 2026-09-30 in UTC
BOUNDARY_Q3: list[int | None] = [4, 4, 4, 4, 4, 4, 4, 4, 4]  # 2026-09-30 23:30 WIB
KK: list[list[int | None]] = [[4, 4, 4, 4, 4, 4, 4, 4, 4], [3, 3, 3, 3, 3, 3, 3, 3, 3], [2, 2, 2, 2, 2, 2, 2, 2, 2]]
SECRET = "Petugas loket tiga minta uang dua ratus ribu supaya cepat"
FILED = datetime(2026, 10, 5, 2, 0, tzinfo=UTC)
_seq = itertools.count(1)


def seed(app: App) -> dict[str, Any]:
    """The known data set; returns the tickets and expected values the tests check."""
    day = datetime(2026, 10, 10, 3, 0, tzinfo=UTC)
    for i, scores in enumerate(KTP):
        add_response(app, "ktp", day + timedelta(days=i), scores)
    add_response(app, "ktp", datetime(2026, 9, 30, 17, 30, tzinfo=UTC), BOUNDARY_Q4)
    add_response(app, "ktp", datetime(2026, 9, 30, 16, 30, tzinfo=UTC), BOUNDARY_Q3)
    for scores in KK:
        add_response(app, "kk", day, scores)
    # complaints about ktp: eight resolved after these many days, one open, one confidential
    resolved_days = [1, 2, 3, 4, 5, 6, 20, 30]
    tickets = [add_complaint(app, "ktp", FILED, SECRET, resolved_at=FILED + timedelta(days=d))
               for d in resolved_days]
    open_ticket = add_complaint(app, "ktp", FILED, SECRET, category="pungli")
    confidential = add_complaint(app, "ktp", FILED, SECRET, confidential=True)
    kk = [add_complaint(app, "kk", FILED, SECRET) for _ in range(2)]
    with app.factory() as db, db.begin():
        # cases for the complaints resolved after 1, 2, 3, 4 and 6 days: first responses after
        # 2, 4, 6, 8, 10 hours; the 6-day one had a 3-day deadline (late)
        for n, (ticket, hours) in enumerate(zip([tickets[i] for i in (0, 1, 2, 3, 5)], (2, 4, 6, 8, 10),
                                                strict=True)):
            c = db.scalars(select(Complaint).where(Complaint.ticket == ticket)).one()
            due = FILED + timedelta(days=3 if n == 4 else 14)
            db.add(Case(source_key=f"test:{next(_seq)}", ticket=ticket, agency_id=c.agency_id,
                        service_id=c.service_id, complaint_id=c.id, channel="telegram", trigger="serious",
                        created_at=FILED, updated_at=FILED, first_response_due=FILED + timedelta(hours=4),
                        resolution_due=due, first_response_at=FILED + timedelta(hours=hours),
                        resolved_at=c.resolved_at, status="resolved"))
        # locations: the open one and one resolved agreed to share; one did not; the confidential
        # one agreed, and still never appears
        for ticket, consent in ((open_ticket, True), (tickets[0], True), (tickets[1], False),
                                (confidential, True)):
            c = db.scalars(select(Complaint).where(Complaint.ticket == ticket)).one()
            c.latitude, c.longitude = -1.5, 102.1
            c.attachments = {"photos": [], "location_public": consent}
    return {"resolved": tickets, "open": open_ticket, "confidential": confidential, "kk": kk}


@asynccontextmanager
async def client(app: App) -> AsyncIterator[TestClient[Any, Any]]:
    web_app = build_web_app(app=app)
    async with TestClient(TestServer(web_app)) as http:
        yield http


def count_statements(app: App) -> list[str]:
    seen: list[str] = []
    event.listen(app.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def row(rows: list[dict[str, Any]], service: str, period: str = "2026-Q4") -> dict[str, Any]:
    [found] = [r for r in rows if r["agency"] == "disdukcapil" and r["service"] == service
               and r["period"] == period]
    return found


async def test_ikm_figures_match_the_answers(app: App, clock: FakeClock) -> None:
    seed(app)
    async with client(app) as http:
        resp = await http.get("/data/ikm.json")
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "*"
        doc = await resp.json()
    assert doc["dataset"] == "ikm" and doc["min_count"] == 5
    assert list(doc["columns"]) == list(figures.IKM_COLUMNS)
    rows = doc["rows"]
    assert all(list(r) == list(figures.IKM_COLUMNS) for r in rows)
    assert {r["period"] for r in rows} == {"2026-Q3", "2026-Q4"}  # default: previous and current

    ktp = row(rows, "ktp")
    expected = ikm.from_scores([*KTP, BOUNDARY_Q4])  # the boundary answer is local Q4
    # 7 respondents, withheld anyway: with kk's 3 withheld, 10 - 7 would give kk away
    assert ktp["respondents"] is None and ktp["status"] == "ok"
    assert expected.value is not None and expected.nrr[0] is not None
    assert ktp["ikm"] == float(expected.value) and ktp["grade"] == expected.grade
    assert ktp["grade_label"] == expected.label
    assert ktp["nrr_1"] == round(float(expected.nrr[0]), 3)
    # element 9 was answered by 4 of the 7: its NRR is withheld, the IKM is not
    assert ktp["nrr_9"] is None and ktp["suppressed"] == ["nrr_9", "respondents"]
    assert (ktp["period_start"], ktp["period_end"]) == ("2026-10-01", "2026-12-31")

    total = row(rows, "")
    everyone = ikm.from_scores([*KTP, BOUNDARY_Q4, *KK])
    assert everyone.value is not None and everyone.nrr[8] is not None
    assert total["respondents"] == 10 and total["ikm"] == float(everyone.value)
    assert total["nrr_9"] == round(float(everyone.nrr[8]), 3)


async def test_under_five_is_withheld(app: App, clock: FakeClock) -> None:
    seed(app)
    async with client(app) as http:
        rows = (await (await http.get("/data/ikm.json")).json())["rows"]
        complaints = (await (await http.get("/data/complaints.json")).json())["rows"]
    kk = row(rows, "kk")
    assert kk["status"] == "suppressed" and kk["respondents"] is None and kk["ikm"] is None
    assert {"respondents", "ikm", "grade", "nrr_1"} <= set(kk["suppressed"])
    assert all(kk[f"nrr_{e}"] is None for e in range(1, 10))
    q3 = row(rows, "", "2026-Q3")  # one respondent in Q3
    assert q3["status"] == "suppressed" and q3["respondents"] is None
    assert row(rows, "akta-lahir")["status"] == "no_data" and row(rows, "akta-lahir")["respondents"] == 0

    kk_c = row(complaints, "kk")
    assert kk_c["received"] is None and "received" in kk_c["suppressed"]
    ktp_c = row(complaints, "ktp")
    assert ktp_c["confidential"] is None and ktp_c["open_at_end"] is None
    assert set(ktp_c["suppressed"]) == {"confidential", "open_at_end", "received"}
    # a single withheld service count is never the total minus the shown ones
    for rs, counts in ((rows, ("respondents",)), (complaints, figures.COUNTS)):
        for key in {(r["agency"], r["period"]) for r in rs}:
            group = [r for r in rs if (r["agency"], r["period"]) == key]
            for column in counts:
                hidden = [r for r in group if r["service"] and r[column] is None]
                total = next(r for r in group if not r["service"])[column]
                assert len(hidden) != 1 or total is None, (key, column)
    # nothing anywhere is a number from 1 to 4
    for r in rows + complaints:
        for k, v in r.items():
            if k in ("respondents", "received", "confidential", "resolved", "resolved_on_time",
                     "open_at_end"):
                assert v is None or v == 0 or v >= 5, (r["service"], k, v)


async def test_complaint_figures_match(app: App, clock: FakeClock) -> None:
    seed(app)
    async with client(app) as http:
        rows = (await (await http.get("/data/complaints.json?period=2026-Q4")).json())["rows"]
        weeks = (await (await http.get("/data/complaints.json?period=2026-W41,2026-10")).json())["rows"]
    ktp = row(rows, "ktp")
    assert ktp["received"] is None and "received" in ktp["suppressed"]  # 10, the complement of kk's 2
    assert ktp["resolved"] == 8
    assert ktp["resolved_on_time"] == 5 and ktp["resolved_on_time_share"] == 0.625
    assert ktp["median_resolution_days"] == 4.5 and ktp["median_first_response_hours"] == 6.0
    assert row(rows, "")["received"] == 12
    assert {r["period"] for r in weeks} == {"2026-W41", "2026-10"}
    assert row(weeks, "", "2026-W41")["received"] == 12  # filed Monday 5 October
    assert row(weeks, "ktp", "2026-W41")["resolved"] == 6  # resolved by Sunday: after 1 to 6 days


async def test_csv_parses_with_documented_columns(app: App, clock: FakeClock) -> None:
    seed(app)
    async with client(app) as http:
        for name, columns in (("ikm", figures.IKM_COLUMNS), ("complaints", figures.COMPLAINT_COLUMNS)):
            resp = await http.get(f"/data/{name}.csv?period=2026-Q4")
            assert resp.status == 200 and resp.content_type == "text/csv"
            text = await resp.text()
            as_json = (await (await http.get(f"/data/{name}.json?period=2026-Q4")).json())["rows"]
            parsed = list(csv.DictReader(io.StringIO(text)))
            assert list(parsed[0]) == list(columns)
            assert len(parsed) == len(as_json)
            for got, want in zip(parsed, as_json, strict=True):
                for k, v in want.items():
                    expect = "" if v is None else " ".join(v) if isinstance(v, list) else str(v)
                    assert got[k] == expect, (name, k)
            assert SECRET not in text
        bad = await http.get("/data/ikm.csv?period=2026-Q5")
        assert bad.status == 400 and "2026-Q4" in (await bad.json())["error"]


async def test_open311_services_and_discovery(app: App, clock: FakeClock) -> None:
    async with client(app) as http:
        services = await (await http.get("/open311/v2/services.json")).json()
        disco = await (await http.get("/open311/v2/discovery.json")).json()
    ktp = next(s for s in services if s["service_code"] == "ktp")
    assert set(ktp) == {"service_code", "service_name", "description", "metadata", "type", "keywords",
                        "group"}
    assert ktp["service_name"] == "KTP Elektronik" and ktp["group"] == "Disdukcapil"
    assert ktp["metadata"] is False and ktp["type"] == "realtime" and "e-ktp" in ktp["keywords"]
    assert disco["endpoints"][0]["url"].endswith("/open311/v2")
    assert disco["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"


async def test_open311_requests(app: App, clock: FakeClock) -> None:
    t = seed(app)
    async with client(app) as http:
        resp = await http.get("/open311/v2/requests.json")
        body = await resp.text()
        listed = await resp.json()
        tickets = {r["service_request_id"] for r in listed}
        assert tickets == {*t["resolved"], t["open"], *t["kk"]}  # filed 49 days ago: within 90
        assert t["confidential"] not in body and SECRET not in body
        first = next(r for r in listed if r["service_request_id"] == t["open"])
        assert first["status"] == "open" and first["status_notes"] == "new"
        assert first["service_code"] == "ktp" and first["service_name"] == "KTP Elektronik"
        assert first["description"] == app.texts("id", "cat.pungli")
        assert first["agency_responsible"].startswith("Dinas Kependudukan")
        assert first["requested_datetime"] == "2026-10-05T09:00:00+07:00"
        assert first["address"] == "" and first["media_url"] == ""
        # coordinates: only where the reporter agreed
        by_id = {r["service_request_id"]: r for r in listed}
        assert (first["lat"], first["long"]) == (-1.5, 102.1)
        assert (by_id[t["resolved"][0]]["lat"], by_id[t["resolved"][0]]["long"]) == (-1.5, 102.1)
        assert by_id[t["resolved"][1]]["lat"] is None and by_id[t["resolved"][1]]["long"] is None
        assert by_id[t["resolved"][0]]["expected_datetime"] == "2026-10-19T09:00:00+07:00"

        closed = await (await http.get("/open311/v2/requests.json?status=closed")).json()
        assert {r["service_request_id"] for r in closed} == set(t["resolved"])
        opened = await (await http.get("/open311/v2/requests.json?status=open&service_code=kk")).json()
        assert {r["service_request_id"] for r in opened} == set(t["kk"])
        before = await (await http.get("/open311/v2/requests.json",
                                       params={"end_date": "2026-10-01T00:00:00+07:00"})).json()
        assert before == []
        window = await (await http.get("/open311/v2/requests.json", params={
            "start_date": "2026-10-05T00:00:00+07:00", "end_date": "2026-10-06T00:00:00+07:00",
            "agency": "disdukcapil"})).json()
        assert len(window) == 11  # the confidential one is not among them

        one = await http.get(f"/open311/v2/requests/{t['open']}.json")
        assert one.status == 200 and [r["service_request_id"] for r in await one.json()] == [t["open"]]
        hidden = await http.get(f"/open311/v2/requests/{t['confidential']}.json")
        unknown = await http.get("/open311/v2/requests/PRM-NOTHING.json")
        assert hidden.status == unknown.status == 404  # confidential looks exactly like unknown
        assert (await hidden.json())[0]["code"] == (await unknown.json())[0]["code"] == 404
        by_ids = await (await http.get("/open311/v2/requests.json",
                                       params={"service_request_id": f"{t['open']},{t['confidential']}"})).json()
        assert [r["service_request_id"] for r in by_ids] == [t["open"]]
        bad = await http.get("/open311/v2/requests.json?status=pending")
        assert bad.status == 400 and (await bad.json())[0]["code"] == 400


async def test_cache_hit_runs_no_statement(app: App, clock: FakeClock) -> None:
    seed(app)
    async with client(app) as http:
        statements = count_statements(app)
        first = await (await http.get("/data/complaints.json?period=2026-Q4")).read()
        assert statements, "the first request computes"
        statements.clear()
        for path in ("/data/complaints.json?period=2026-Q4",) * 3:
            assert await (await http.get(path)).read() == first
        assert statements == []
        # a new complaint through the ORM empties the cache: the next request recomputes
        add_complaint(app, "kk", FILED, SECRET)
        statements.clear()
        doc = await (await http.get("/data/complaints.json?period=2026-Q4")).json()
        assert statements and row(doc["rows"], "")["received"] == 13


async def test_cache_expires_and_concurrent_misses_compute_once() -> None:
    import asyncio

    from bot.web.opendata.cache import TTLCache

    now = [0.0]
    cache = TTLCache(ttl=300, clock=lambda: now[0])
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return calls

    assert await asyncio.gather(*(cache.get("k", compute) for _ in range(20))) == [1] * 20
    now[0] = 299
    assert await cache.get("k", compute) == 1
    now[0] = 301
    assert await cache.get("k", compute) == 2
    cache.invalidate()
    assert await cache.get("k", compute) == 3


async def test_services_only_active(app: App, clock: FakeClock) -> None:
    with app.factory() as db, db.begin():
        db.scalars(select(Service).where(Service.code == "kk")).one().active = False
    async with client(app) as http:
        codes = {s["service_code"] for s in await (await http.get("/open311/v2/services.json")).json()}
    assert "ktp" in codes and "kk" not in codes


def test_period_labels() -> None:
    from datetime import date

    import pytest

    from bot.web.opendata.periods import default_periods, parse, parse_list

    assert (parse("2026-w47").first, parse("2026-W47").end) == (date(2026, 11, 16), date(2026, 11, 23))
    assert (parse("2026-2").label, parse("2026-02").end) == ("2026-02", date(2026, 3, 1))
    assert (parse("2026-Q4").first, parse("2026-Q4").end) == (date(2026, 10, 1), date(2027, 1, 1))
    assert (parse("2026-S1").first, parse("2026-S1").end) == (date(2026, 1, 1), date(2026, 7, 1))
    assert (parse("2026").first, parse("2026").end) == (date(2026, 1, 1), date(2027, 1, 1))
    for bad in ("2026-Q5", "2026-13", "2026-W54", "2026-S3", "last year", ""):
        with pytest.raises(ValueError):
            parse(bad)
    with pytest.raises(ValueError):
        parse_list([",".join(f"2026-{m:02d}" for m in range(1, 13)) + ",2025"])
    # the quarter is the agency's: 31 Dec 16:30 UTC is 23:30 in Jakarta, 01:30 on 1 January in Jayapura
    moment = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    assert [p.label for p in default_periods(moment, "Asia/Jakarta")] == ["2026-Q3", "2026-Q4"]
    assert [p.label for p in default_periods(moment, "Asia/Jayapura")] == ["2026-Q4", "2027-Q1"]
    lo, hi = parse("2026-Q4").bounds("Asia/Makassar")
    assert (lo, hi) == (datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 12, 31, 16, tzinfo=UTC))
