"""Upstream failures as GeoReport errors: 502 garbage, 503 down/circuit open, 504 timeout.

Like pgstac translating database errors at the boundary, every failure of a partner call
becomes one of these; routes render them as spec-shaped ``errors`` documents.
"""

from __future__ import annotations

from app.errors import Open311Error


class UpstreamError(Open311Error):
    """A partner call failed; ``transient`` failures are retried, others are final."""

    status_code = 502
    title = "The partner jurisdiction's server failed."
    transient = True


class UpstreamBadResponse(UpstreamError):
    """502: the partner answered something that is not a GeoReport document we can read."""

    status_code = 502
    title = "The partner jurisdiction's server answered an unreadable response."


class UpstreamUnavailable(UpstreamError):
    """503: the partner is down (connection failed, 5xx) or its circuit is open."""

    status_code = 503
    title = "The partner jurisdiction's server is unavailable. Please retry later."

    def __init__(self, *descriptions: str, retry_after: int = 30) -> None:
        super().__init__(*descriptions, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class UpstreamTimeout(UpstreamError):
    """504: the partner did not answer within ``federation.timeout_s``."""

    status_code = 504
    title = "The partner jurisdiction's server did not answer in time."


class PartnerRejected(UpstreamError):
    """The partner refused a submission (4xx with an errors document): final, not retried."""

    status_code = 502
    transient = False

    def __init__(self, partner_status: int, *descriptions: str) -> None:
        super().__init__(*descriptions)
        self.partner_status = partner_status
