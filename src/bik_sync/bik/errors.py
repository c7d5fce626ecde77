"""What can go wrong with one batch sent to BIK, as exceptions the delivery layer tells apart."""

from __future__ import annotations


class BikError(Exception):
    """BIK did not take the batch. ``attempts``/``retries`` say how many requests it cost."""

    def __init__(self, message: str, *, attempts: int = 0, retries: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = attempts
        self.retries = retries


class BadRequest(BikError):
    """BIK refused the whole batch (400): some record in it is invalid. The caller bisects."""


class PayloadTooLarge(BadRequest):
    """BIK refused the batch as too large (413); splitting it helps just as for a 400."""


class AuthFailed(BikError):
    """401 even with a freshly fetched token. The message should be retried later, not the batch."""


class RetryableFailure(BikError):
    """Retries exhausted or the time budget cannot fit another try; the batch may be sent again later."""


class UnexpectedStatus(BikError):
    """A status that neither a retry nor a split can fix (404, 403, 3xx...): a configuration problem."""

    def __init__(self, message: str, *, status: int, attempts: int = 0, retries: int = 0) -> None:
        super().__init__(message, attempts=attempts, retries=retries)
        self.status = status
