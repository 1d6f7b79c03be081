"""Open data: aggregate CSV/JSON files under /data and read-only Open311 GeoReport v2 endpoints.

- periods: period labels (2026-W47, 2026-11, 2026-Q4, 2026-S2, 2026) and their bounds in an agency's zone
- figures: the IKM and complaint aggregates per agency, service and period, with the under-5 rule
- open311: services and (non-confidential) requests in GeoReport v2 form
- cache: a small TTL cache keyed by query, emptied when survey or complaint data change
- routes: the aiohttp handlers and ``add_opendata_routes``
"""
