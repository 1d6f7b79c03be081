"""The WhatsApp lines of ``python bot.py doctor``: credentials, template, Graph API version.

Reads only: ``GET /{phone-number-id}`` (with ``appsecret_proof``, so the app secret is checked
too) and ``GET /{business-account-id}/message_templates``. Each check gives
``(level, name, detail)`` lines; ``bot.cli.doctor`` prints them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date
from typing import Any

import aiohttp

from bot.config import Settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"
Line = tuple[str, str, str]
EOL_WARN_DAYS = 90


class Lines(list[Line]):
    def add(self, level: str, name: str, detail: str) -> None:
        self.append((level, name, detail))

# Graph API versions and the first day Meta may switch them off. Meta keeps a version at least
# two years after the NEXT one is released (https://developers.facebook.com/docs/graph-api/
# changelog); the newest version's date is its own release plus two years, a lower bound.
# Add a row when Meta releases a version (and correct the previous one's date).
GRAPH_END_OF_LIFE: dict[str, date] = {
    "v17.0": date(2025, 9, 12),
    "v18.0": date(2026, 1, 23),
    "v19.0": date(2026, 5, 21),
    "v20.0": date(2026, 9, 24),
    "v21.0": date(2027, 1, 21),
    "v22.0": date(2027, 5, 29),
    "v23.0": date(2027, 10, 8),
    "v24.0": date(2028, 2, 18),
    "v25.0": date(2028, 7, 29),
    "v26.0": date(2028, 7, 29),
}


def graph_version(settings: Settings) -> str:
    """The version the bot calls: the one in WHATSAPP_API_BASE if it has one."""
    found = re.search(r"/(v\d{1,3}\.\d)/?$", settings.whatsapp_graph_url)
    return found.group(1) if found else settings.whatsapp_api_version


def version_line(version: str, today: date) -> Line:
    name = "whatsapp api version"
    end = GRAPH_END_OF_LIFE.get(version)
    newest = max(GRAPH_END_OF_LIFE, key=lambda v: tuple(int(x) for x in v[1:].split(".")))
    if end is None:
        return WARN, name, (f"{version}: its end of life is not known to this Prima (newest known "
                            f"{newest}); check Meta's changelog")
    days = (end - today).days
    if days < 0:
        return FAIL, name, f"{version} reached its end of life on {end}: set WHATSAPP_API_VERSION={newest}"
    if days <= EOL_WARN_DAYS:
        return WARN, name, (f"{version} ends on {end} ({days} days): test and set "
                            f"WHATSAPP_API_VERSION={newest}")
    return OK, name, f"{version}, supported until at least {end}"


async def _graph_get(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url, params=params) as resp:
        try:
            data = await resp.json(content_type=None)
        except ValueError:
            data = None
        return resp.status, data if isinstance(data, dict) else {}


def _error_of(data: dict[str, Any]) -> dict[str, Any]:
    err = data.get("error")
    return err if isinstance(err, dict) else {}


def _graph_error(status: int, data: dict[str, Any]) -> str:
    err = _error_of(data)
    details = (err.get("error_data") or {}).get("details")
    return (f"HTTP {status}, code {err.get('code')}: {err.get('message') or 'no message'}"
            + (f" ({details})" if details else ""))


async def check_whatsapp(settings: Settings, today: date) -> Lines:
    from bot.channels.whatsapp.channel import whatsapp_missing

    report = Lines()
    missing = whatsapp_missing(settings)
    if missing:
        report.add(FAIL, "whatsapp", f"{', '.join(missing)} missing: WhatsApp needs all four settings")
    report.add(*version_line(graph_version(settings), today))
    token, phone = settings.whatsapp_token or "", settings.whatsapp_phone_number_id or ""
    if not (token and phone):
        return report
    base = settings.whatsapp_graph_url
    params = {"fields": "display_phone_number,verified_name,quality_rating"}
    if settings.whatsapp_app_secret:  # Meta checks the proof when one is sent: the secret is tested too
        params["appsecret_proof"] = hmac.new(settings.whatsapp_app_secret.encode(), token.encode(),
                                             hashlib.sha256).hexdigest()
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            status, data = await _graph_get(http, f"{base}/{phone}", **params)
            if status >= 400 or "error" in data:
                report.add(FAIL, "whatsapp", _whatsapp_advice(status, data))
                return report
            report.add(OK, "whatsapp", f"token, phone number id and app secret valid: "
                       f"{data.get('display_phone_number')} ({data.get('verified_name')}), "
                       f"quality {data.get('quality_rating') or 'unknown'}")
            await _check_template(settings, http, report)
    except (aiohttp.ClientError, TimeoutError) as exc:
        report.add(FAIL, "whatsapp", f"cannot reach the Graph API at {base} "
                   f"({str(exc) or type(exc).__name__}): check the network or WHATSAPP_API_BASE")
    return report


def _whatsapp_advice(status: int, data: dict[str, Any]) -> str:
    err = _error_of(data)
    code = err.get("code")
    message = f"{err.get('message') or ''} {(err.get('error_data') or {}).get('details') or ''}"
    what = _graph_error(status, data)
    if code == 190 or status == 401:
        return f"WHATSAPP_TOKEN refused ({what}): make a new system-user token in Business Manager"
    if "appsecret_proof" in message:
        return f"WHATSAPP_APP_SECRET does not belong to the token's app ({what}): copy it from App settings, Basic"
    return f"WHATSAPP_PHONE_NUMBER_ID not readable with this token ({what}): copy it from WhatsApp, API Setup"


async def _check_template(settings: Settings, http: aiohttp.ClientSession, report: Lines) -> None:
    name = settings.whatsapp_template_followup
    if not name:
        report.add(OK, "whatsapp template", "none configured: follow-ups after 24 hours wait for "
                   "the resident to write (WHATSAPP_TEMPLATE_FOLLOWUP)")
        return
    waba = settings.whatsapp_business_account_id
    if not waba:
        report.add(WARN, "whatsapp template", f"{name} not checked: set "
                   "WHATSAPP_BUSINESS_ACCOUNT_ID (WhatsApp, API Setup) so doctor can look it up")
        return
    status, data = await _graph_get(http, f"{settings.whatsapp_graph_url}/{waba}/message_templates",
                                    name=name, fields="name,status,language")
    if status >= 400 or "error" in data:
        report.add(FAIL, "whatsapp template", f"cannot list templates of WHATSAPP_BUSINESS_ACCOUNT_ID "
                   f"{waba} ({_graph_error(status, data)})")
        return
    found = {str(t.get("language")): str(t.get("status")) for t in data.get("data") or []
             if isinstance(t, dict) and t.get("name") == name}
    wanted = {settings.whatsapp_template_language, settings.whatsapp_template_language_en}
    missing = sorted(lang for lang in wanted if lang not in found)
    unapproved = sorted(f"{lang} {state}" for lang, state in found.items()
                        if lang in wanted and state != "APPROVED")
    if not found:
        report.add(FAIL, "whatsapp template", f"{name} does not exist in business account {waba}: "
                   "create it in WhatsApp Manager, or unset WHATSAPP_TEMPLATE_FOLLOWUP")
    elif missing or unapproved:
        report.add(WARN, "whatsapp template", f"{name}: " + "; ".join(
            ([f"no translation {', '.join(missing)}"] if missing else [])
            + ([f"not approved: {', '.join(unapproved)}"] if unapproved else []))
            + " (those residents' follow-ups wait for them to write)")
    else:
        report.add(OK, "whatsapp template", f"{name} approved in {', '.join(sorted(wanted))}")
