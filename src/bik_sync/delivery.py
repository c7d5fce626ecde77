"""Deliver a list of records to BIK: batches, requests in flight, splitting refused batches.

``deliver`` cuts the records into batches (at most ``batch_size`` records and ``max_batch_bytes``
of JSON each), sends up to ``max_in_flight`` of them at once on threads sharing the client's
connection pool, and splits a batch BIK refuses with a 400 in halves until the invalid records are
isolated: the good halves go in, each isolated record becomes a reject with BIK's message.

Every input index ends in exactly one place: counted as created or updated, in ``rejected`` or in
``failed``. When BIK refuses the credentials even after a refetch (:class:`AuthFailed`), that batch
and every batch not yet sent are failed with the reason (``auth_failure`` says it); answers already
received are kept.

``on_settled`` (optional) hears each request's answer as it arrives, on the calling thread: what a
caller that keeps its own journal (``bik-sync push``) needs to record a batch the moment BIK settled it.

``deliver_stream`` is the same engine over an iterable drawn as batches are planned (``bik-sync push``
streams a whole file through one run): the requests in flight stay busy from the first record to the
last, memory holds a bounded few batches, and what each record became is said only to ``on_settled``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from bik_sync.batching import BatchPacker
from bik_sync.bik import (
    BODY_SUFFIX,
    AuthFailed,
    BadRequest,
    BikError,
    body_overhead,
    body_prefix,
    encode_record,
)
from bik_sync.bik.client import BikClient
from bik_sync.bik.responses import BatchResult
from bik_sync.observability import logger


@dataclass(slots=True)
class DeliveryOutcome:
    """What happened to each input record.

    ``created + updated + len(rejected) + len(unmatched) + len(failed) == len(records)``.
    ``rejected`` and ``failed`` hold ``(index into the input records, reason)``, sorted by index;
    ``unmatched`` the reasons of entries BIK reported that could not be matched to a record (kept,
    never dropped; each stands in for one of the records sent, which is then not counted as
    created or updated, and has no index: no record may be blamed for it).
    """

    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    auth_failure: str = ""  # BIK refused the credentials (after a refetch): nothing more can go in

    @property
    def delivered(self) -> int:
        return self.created + self.updated

    def accounted(self) -> int:
        """How many input records this outcome accounts for (equals ``len(records)``)."""
        return self.created + self.updated + len(self.rejected) + len(self.unmatched) + len(self.failed)


@dataclass(frozen=True, slots=True)
class Settled:
    """One request's answer, by index into the records given to :func:`deliver`.

    ``settled``: the records BIK confirmed or refused (they need not be sent again); ``created``,
    ``updated``, ``rejected`` and ``unmatched`` account for exactly those; ``failed``: the records
    this answer leaves undelivered (a retryable failure, or refused credentials and the batches not
    sent after them). A batch halved after a 400 is heard of through its halves.
    """

    settled: tuple[int, ...] = ()
    created: int = 0
    updated: int = 0
    rejected: tuple[tuple[int, str], ...] = ()
    unmatched: tuple[str, ...] = ()
    failed: tuple[tuple[int, str], ...] = ()


OnSettled = Callable[[Settled], None]


# A reason kept between tries is cut to this length: progress must stay a small DynamoDB item.
_MAX_KEPT_REASON = 300


@dataclass(frozen=True, slots=True)
class DeliveryProgress:
    """What earlier tries at the same records settled, so that a retry sends only the rest.

    A record is settled once BIK confirmed it (counted in ``created``/``updated``) or refused it (in
    ``rejected``, by index into all the records; an entry BIK reported that matched none is kept in
    ``unmatched``).
    Failed records are not settled: they are sent again. Resending a record BIK already holds would
    be harmless (an upsert), but it would count it again, as an update.
    """

    settled: frozenset[int] = frozenset()
    created: int = 0
    updated: int = 0
    rejected: tuple[tuple[int, str], ...] = ()
    unmatched: tuple[str, ...] = ()

    def pending(self, count: int) -> list[int]:
        """The indices of ``count`` records still to send, in order."""
        return [i for i in range(count) if i not in self.settled]

    def after(
        self, sent: Sequence[int], outcome: DeliveryOutcome
    ) -> tuple[DeliveryProgress, DeliveryOutcome]:
        """This progress plus a try at ``sent`` (the indices the try's records had among all records),
        and the whole outcome so far, by index into all records."""
        failed = [(sent[j], reason) for j, reason in outcome.failed]
        rejected = [(sent[j], reason) for j, reason in outcome.rejected]
        failed_now = {i for i, _ in failed}
        progress = DeliveryProgress(
            settled=self.settled | {i for i in sent if i not in failed_now},
            created=self.created + outcome.created,
            updated=self.updated + outcome.updated,
            rejected=self.rejected + tuple(rejected),
            unmatched=self.unmatched + tuple(outcome.unmatched),
        )
        total = replace(
            outcome,
            created=progress.created,
            updated=progress.updated,
            rejected=sorted(progress.rejected, key=lambda item: item[0]),
            failed=failed,
            unmatched=list(progress.unmatched),
        )
        return progress, total

    def to_json(self) -> str:
        return json.dumps(
            {
                "settled": _ranges(sorted(self.settled)),
                "created": self.created,
                "updated": self.updated,
                "rejected": [[i, reason[:_MAX_KEPT_REASON]] for i, reason in self.rejected],
                "unmatched": [reason[:_MAX_KEPT_REASON] for reason in self.unmatched],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> DeliveryProgress:
        """Read what :meth:`to_json` wrote; raises ValueError on anything else."""
        try:
            doc = json.loads(text)
            settled = frozenset(i for start, end in doc["settled"] for i in range(int(start), int(end)))
            rejected = tuple((int(i), str(reason)) for i, reason in doc["rejected"])
            unmatched = tuple(str(reason) for reason in doc.get("unmatched", ()))
            # Progress saved before unmatched entries had a field of their own marked them with -1.
            unmatched += tuple(reason for i, reason in rejected if i < 0)
            rejected = tuple((i, reason) for i, reason in rejected if i >= 0)
            return cls(settled, int(doc["created"]), int(doc["updated"]), rejected, unmatched)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"delivery progress is not readable ({type(exc).__name__})") from exc


def _ranges(indices: Iterable[int]) -> list[list[int]]:
    """Sorted indices as half-open [start, end) runs: a settled batch of 1,000 is one pair."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


def deliver(
    records: Sequence[Mapping[str, Any]],
    client: BikClient,
    *,
    batch_size: int = 100,
    max_batch_bytes: int = 240_000,
    max_in_flight: int = 8,
    deadline: float,
    app_id: str = "",
    on_settled: OnSettled | None = None,
) -> DeliveryOutcome:
    """Send ``records`` to BIK; ``deadline`` is a value of the client's clock after which nothing is sent.

    ``app_id``, when given, goes in every body as ``appId`` (and counts in the byte cap).
    """
    started = time.monotonic()
    outcome = DeliveryOutcome()
    planner, run = _prepare(
        records, client, outcome, batch_size, max_batch_bytes, max_in_flight, deadline, app_id
    )
    run.on_settled = on_settled
    splits = run.send()
    outcome.rejected.sort(key=lambda item: item[0])
    outcome.failed.sort(key=lambda item: item[0])
    counts = StreamOutcome(
        records=len(records),
        created=outcome.created,
        updated=outcome.updated,
        rejected=len(outcome.rejected),
        unmatched=len(outcome.unmatched),
        failed=len(outcome.failed),
        requests=outcome.requests,
        retries=outcome.retries,
    )
    _log_finished(planner.batches, splits, counts, started)
    return outcome


def _prepare(
    records: Iterable[Mapping[str, Any]],
    client: BikClient,
    outcome: DeliveryOutcome,
    batch_size: int,
    max_batch_bytes: int,
    max_in_flight: int,
    deadline: float,
    app_id: str,
) -> tuple[_Planner, _Run]:
    """The planner and the run both entry points drive (the same engine)."""
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be at least 1")
    planner = _Planner(
        iter(records),
        BatchPacker(max_records=batch_size, max_bytes=max_batch_bytes, overhead=body_overhead(app_id)),
    )
    run = _Run(planner, client, deadline=deadline, max_in_flight=max_in_flight, outcome=outcome)
    run.prefix = body_prefix(app_id)
    return planner, run


@dataclass(slots=True)
class StreamOutcome:
    """What :func:`deliver_stream` counted; every record it drew was heard of through ``on_settled``.

    ``created + updated + rejected + unmatched + failed == records``. ``exhausted``: the stream
    was read to its end (False after refused credentials: nothing more was drawn from it).
    """

    records: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    unmatched: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    auth_failure: str = ""
    exhausted: bool = False

    @property
    def delivered(self) -> int:
        return self.created + self.updated


def deliver_stream(
    records: Iterable[Mapping[str, Any]],
    client: BikClient,
    *,
    on_settled: OnSettled,
    batch_size: int = 100,
    max_batch_bytes: int = 240_000,
    max_in_flight: int = 8,
    deadline: float,
    app_id: str = "",
) -> StreamOutcome:
    """:func:`deliver` over records drawn one by one from ``records``, in one run from first to last.

    The same engine: ``max_in_flight`` requests stay busy from the first record to the last (no
    pause between parts of the input), and a record is drawn only when the batch it joins is being
    planned, so memory holds only the batches in flight and a split batch's halves. Indices in the
    ``Settled`` events are positions in the stream (the first record drawn is 0). The outcome keeps
    counts only: what each record became is said once, to ``on_settled``. When BIK refuses the
    credentials, the records already drawn and not settled are failed and nothing more is drawn.
    """
    started = time.monotonic()
    scratch = DeliveryOutcome()
    planner, run = _prepare(
        records, client, scratch, batch_size, max_batch_bytes, max_in_flight, deadline, app_id
    )
    run.on_settled, run.stream = on_settled, StreamOutcome()
    splits = run.send()
    outcome = run.stream
    outcome.records, outcome.exhausted = planner.drawn, planner.exhausted
    outcome.requests, outcome.retries = scratch.requests, scratch.retries
    outcome.auth_failure = scratch.auth_failure
    _log_finished(planner.batches, splits, outcome, started)
    return outcome


def _log_finished(batches: int, splits: int, counts: StreamOutcome, started: float) -> None:
    logger.info(
        "delivery finished",
        delivery_records=counts.records,
        delivery_batches=batches,
        delivery_splits=splits,
        delivery_created=counts.created,
        delivery_updated=counts.updated,
        delivery_rejected=counts.rejected + counts.unmatched,
        delivery_failed=counts.failed,
        delivery_requests=counts.requests,
        delivery_retries=counts.retries,
        delivery_seconds=round(time.monotonic() - started, 3),
    )


@dataclass(slots=True)
class _Batch:
    """Records to send as one request: their indices, the records and their encoded JSON."""

    indices: list[int] = field(default_factory=list)
    records: list[Mapping[str, Any]] = field(default_factory=list)
    pieces: list[bytes] = field(default_factory=list)

    def halves(self) -> tuple[_Batch, _Batch]:
        m = len(self.indices) // 2
        return (
            _Batch(self.indices[:m], self.records[:m], self.pieces[:m]),
            _Batch(self.indices[m:], self.records[m:], self.pieces[m:]),
        )


class _Planner:
    """Batches by the batching rule (:class:`BatchPacker`), cut only as they are wanted: each record
    is drawn and encoded once, just before the batch it opens or joins is sent, so the first request
    does not wait for the last record's encoding. A record that cannot be encoded goes to
    ``refused`` (rejected, never sent)."""

    def __init__(self, records: Iterator[Mapping[str, Any]], packer: BatchPacker) -> None:
        self._records = records
        self._packer = packer
        self._carried: tuple[int, Mapping[str, Any], bytes] | None = None  # the next batch's first
        self.refused: list[tuple[int, str]] = []
        self.batches = 0
        self.drawn = 0
        self.exhausted = False

    def next_batch(self) -> _Batch | None:
        """The next batch (None when every record is planned)."""
        batch = _Batch()
        if self._carried is not None:
            self._add(batch, *self._carried)
            self._carried = None
        while not self.exhausted:
            try:
                record = next(self._records)
            except StopIteration:
                self.exhausted = True
                break
            i = self.drawn
            self.drawn += 1
            try:
                piece = encode_record(record)
            except (TypeError, ValueError) as exc:
                self.refused.append((i, f"record cannot be sent as JSON ({type(exc).__name__})"))
                continue
            if self._packer.add(len(piece)) and batch.indices:
                self._carried = (i, record, piece)
                break
            self._add(batch, i, record, piece)
        if not batch.indices:
            return None
        self.batches += 1
        return batch

    def drawn_batch(self) -> _Batch | None:
        """The record drawn for the next batch, if any, as a batch of its own (nothing more is drawn)."""
        if self._carried is None:
            return None
        batch = _Batch()
        self._add(batch, *self._carried)
        self._carried = None
        return batch

    @staticmethod
    def _add(batch: _Batch, i: int, record: Mapping[str, Any], piece: bytes) -> None:
        batch.indices.append(i)
        batch.records.append(record)
        batch.pieces.append(piece)


class _Run:
    """One delivery: the batches waiting, the requests in flight, and what BIK answered.

    As many threads as requests may be in flight (they start lazily): the halves of a split batch
    go out side by side, and nothing waits inside the pool where a 401 could not stop it. Batches
    are planned and handed to the pool only as requests finish, so that an auth failure stops
    everything not yet under way, and each body is built just before it is sent.

    With ``stream`` set (:func:`deliver_stream`), each answer's entries are counted there once
    ``on_settled`` heard them, and dropped; an auth failure fails only the records already drawn.
    """

    def __init__(
        self,
        planner: _Planner,
        client: BikClient,
        *,
        deadline: float,
        max_in_flight: int,
        outcome: DeliveryOutcome,
    ) -> None:
        self._planner = planner
        self._client = client
        self._deadline = deadline
        self._max_in_flight = max_in_flight
        self._outcome = outcome
        self._waiting: deque[_Batch] = deque()
        self._pending: dict[Future[BatchResult], _Batch] = {}
        self._auth_failure = ""
        self._splits = 0
        self.prefix = body_prefix()
        self.on_settled: OnSettled | None = None
        self.stream: StreamOutcome | None = None
        self._ready: _Batch | None = None  # a stream's next batch, planned while requests are out
        self._untold: deque[Settled] = deque()  # answers counted, on_settled not yet told

    def send(self) -> int:
        """Deliver every batch (splitting refused ones); returns how many splits it took.

        The answers that came in are counted, the freed slots refilled, and only then is
        ``on_settled`` told (a journal's write does not hold back the next request); a stream then
        plans its next batch while the requests are out, so that a freed slot is refilled at once.
        """
        executor = ThreadPoolExecutor(max_workers=self._max_in_flight, thread_name_prefix="bik")
        try:
            self._fill(executor)
            self._report_refused()
            self._plan_ahead()
            while self._pending:
                done, _ = wait(self._pending, return_when=FIRST_COMPLETED)
                for future in done:
                    if (event := self._heard(future, self._pending.pop(future))) is not None:
                        self._untold.append(event)
                if not self._auth_failure:
                    self._fill(executor)
                self._tell_untold()
                self._report_refused()
                self._plan_ahead()
        except BaseException:  # Ctrl-C, or the records' reader failed (an unreadable file part way)
            self._hear_the_rest()
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        return self._splits

    def _hear_the_rest(self) -> None:
        """Stopped (Ctrl-C, a read error): the requests already out still reach BIK, so their answers
        are heard."""
        while self._pending:
            future = next(iter(self._pending))
            if (event := self._heard(future, self._pending.pop(future))) is not None:
                self._untold.append(event)
        self._tell_untold()

    def _tell_untold(self) -> None:
        while self._untold:
            self._tell(self._untold.popleft())

    def _next_batch(self) -> _Batch | None:
        """A split batch's halves first, then the batch planned ahead, then the next batch planned."""
        if self._waiting:
            return self._waiting.popleft()
        if self._ready is not None:
            batch, self._ready = self._ready, None
            return batch
        return self._planner.next_batch()

    def _plan_ahead(self) -> None:
        if self.stream is not None and self._ready is None and not self._auth_failure:
            self._ready = self._planner.next_batch()

    def _unsent(self) -> _Batch | None:
        """After refused credentials, what is left to fail: every batch, or only what was drawn."""
        if self._waiting or self._ready is not None:
            return self._next_batch()
        return self._planner.drawn_batch() if self.stream is not None else self._planner.next_batch()

    def _report_refused(self) -> None:
        """Records that cannot be encoded are rejected (and heard of) as the planner meets them."""
        refused = self._planner.refused
        if not refused:
            return
        self._outcome.rejected.extend(refused)
        if self.on_settled is not None:
            self.on_settled(Settled(settled=tuple(i for i, _ in refused), rejected=tuple(refused)))
        refused.clear()
        self._counted()

    def _fill(self, executor: ThreadPoolExecutor) -> None:
        while len(self._pending) < self._max_in_flight:
            batch = self._next_batch()
            if batch is None:
                return
            body = self.prefix + b",".join(batch.pieces) + BODY_SUFFIX
            future = executor.submit(self._client.upsert, batch.records, deadline=self._deadline, body=body)
            self._pending[future] = batch

    def _heard(self, future: Future[BatchResult], batch: _Batch) -> Settled | None:
        """Settle one answer; returns what ``on_settled`` is to hear of it (nothing for a split)."""
        outcome = self._outcome
        before = (outcome.created, outcome.updated, len(outcome.rejected), len(outcome.unmatched))
        failed_before = len(outcome.failed)
        settled = self._settle(future, batch)
        if self.on_settled is None or (not settled and len(outcome.failed) == failed_before):
            return None
        return Settled(
            settled=tuple(settled),
            created=outcome.created - before[0],
            updated=outcome.updated - before[1],
            rejected=tuple(outcome.rejected[before[2] :]),
            unmatched=tuple(outcome.unmatched[before[3] :]),
            failed=tuple(outcome.failed[failed_before:]),
        )

    def _tell(self, event: Settled) -> None:
        if self.on_settled is not None:
            self.on_settled(event)
        self._counted()

    def _counted(self) -> None:
        """A stream keeps counts of what ``on_settled`` heard, not the entries themselves (all the
        answers heard so far: their entries stay in the lists until every one of them was told)."""
        stream, outcome = self.stream, self._outcome
        if stream is None:
            return
        stream.created, stream.updated = outcome.created, outcome.updated
        stream.rejected += len(outcome.rejected)
        stream.unmatched += len(outcome.unmatched)
        stream.failed += len(outcome.failed)
        outcome.rejected.clear()
        outcome.unmatched.clear()
        outcome.failed.clear()

    def _settle(self, future: Future[BatchResult], batch: _Batch) -> list[int]:
        """Count one answer; returns the indices it settled (BIK confirmed or refused them)."""
        outcome = self._outcome
        indices = batch.indices
        try:
            result = future.result()
        except BadRequest as exc:
            _count_requests(outcome, exc)
            return self._refused(batch, exc)
        except AuthFailed as exc:
            _count_requests(outcome, exc)
            self._auth_failure = outcome.auth_failure = exc.message
            outcome.failed.extend((i, exc.message) for i in indices)
            # Nothing more can go in with these credentials: fail what has not started.
            unsent = f"not sent: {exc.message}"
            while (rest := self._unsent()) is not None:
                outcome.failed.extend((i, unsent) for i in rest.indices)
        except BikError as exc:  # RetryableFailure, UnexpectedStatus: try again later
            _count_requests(outcome, exc)
            outcome.failed.extend((i, exc.message) for i in indices)
        else:
            outcome.requests += result.attempts
            outcome.retries += result.retries
            outcome.created += result.created
            outcome.updated += result.updated
            outcome.rejected.extend((indices[j], reason) for j, reason in result.rejected)
            outcome.unmatched.extend(result.unmatched)
            return indices
        return []

    def _refused(self, batch: _Batch, exc: BadRequest) -> list[int]:
        """BIK refused the whole batch: a lone record is the one to blame; a larger batch is halved."""
        if len(batch.indices) == 1:
            self._outcome.rejected.append((batch.indices[0], exc.message))
            return batch.indices
        if self._auth_failure:
            self._outcome.failed.extend((i, self._auth_failure) for i in batch.indices)
        else:
            # The halves go first: a split batch is finished before new ones start.
            self._splits += 1
            first, second = batch.halves()
            self._waiting.appendleft(second)
            self._waiting.appendleft(first)
        return []


def _count_requests(outcome: DeliveryOutcome, exc: BikError) -> None:
    outcome.requests += exc.attempts
    outcome.retries += exc.retries
