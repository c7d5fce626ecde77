"""Are these credentials good? One POST to BIK's ``authPartnerViaKey``, read into one of three answers.

BIK answers ``{"status": "200"}`` for good credentials. The token never appears in a detail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, Literal

import urllib3

from bik_sync.bik.client import make_pool
from bik_sync.bik.responses import error_message
from bik_sync.bik.wire import auth_url_for, check_api_url

Verdict = Literal["ok", "refused", "unreachable"]
_GOOD: Final = ("200", 200, True)
_MAX_DETAIL: Final = 200


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    verdict: Verdict
    detail: str  # what BIK answered, or why it could not be reached
    url: str


def check_credentials(
    api_url: str,
    token: str,
    *,
    app_id: str = "",
    allow_http: bool = False,
    timeout_s: float = 10.0,
    http: urllib3.PoolManager | None = None,
) -> CredentialCheck:
    """POST ``authPartnerViaKey`` beside ``api_url`` (the upsert URL) once, no retries."""
    check_api_url(api_url, allow_http=allow_http)
    url = auth_url_for(api_url)
    body = json.dumps({"appId": app_id} if app_id else {}).encode()
    pool = http if http is not None else make_pool(1)
    try:
        response = pool.request(
            "POST",
            url,
            body=body,
            headers={
                "Authorization": f"Basic {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=urllib3.Timeout(total=timeout_s),
            retries=False,
            redirect=False,
        )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        cause = f"{type(exc).__name__}: {exc}"
        return CredentialCheck("unreachable", cause[:_MAX_DETAIL], url)
    return _read(response.status, response.data, url)


def _read(status: int, data: bytes, url: str) -> CredentialCheck:
    if status in (401, 403):
        return CredentialCheck("refused", f"BIK answered {status}", url)
    if status == 400:
        return CredentialCheck(
            "refused", f"BIK answered 400: {error_message(data, status)}"[:_MAX_DETAIL], url
        )
    if status != 200:
        return CredentialCheck("unreachable", f"BIK answered {status}", url)
    try:
        doc = json.loads(data)
    except ValueError:
        return CredentialCheck("unreachable", "BIK answered 200 with a body that is not JSON", url)
    answered = doc.get("status") if isinstance(doc, dict) else None
    if answered in _GOOD:
        return CredentialCheck("ok", "BIK accepted the credentials", url)
    return CredentialCheck("refused", f"BIK answered 200 with status {answered!r}"[:_MAX_DETAIL], url)
