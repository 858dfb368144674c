"""One error tree for the whole system.

``DomainError`` covers bad input and refused business operations; ``VenueError`` covers failures
talking to an exchange or broker, split by whether a retry can help. Messages state the bad value.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose.

    Parameters
    ----------
    message:
        Human-readable text that names the bad value.
    field:
        Name of the offending input field, when there is one (shown in API errors).
    """

    code = "domain_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidOrder(DomainError):
    """An order that cannot be accepted as given (bad qty, price, type or symbol rules)."""

    code = "invalid_order"


class DuplicateOrder(DomainError):
    """An order id or ``client_order_id`` that is already used."""

    code = "duplicate_order"


class OrderRejected(DomainError):
    """The venue refused an order; the rejected order is stored.

    Parameters
    ----------
    message:
        What happened, with the order id.
    order_id:
        The stored order's client id.
    reason:
        The venue's reason (e.g. ``"insufficient margin"``).
    """

    code = "order_rejected"

    def __init__(self, message: str, *, order_id: str, reason: str, field: str = "qty") -> None:
        super().__init__(message, field=field)
        self.order_id = order_id
        self.reason = reason


class UnknownSymbol(DomainError):
    """A symbol that the running system does not trade or store."""

    code = "unknown_symbol"


class OrderNotFound(DomainError):
    """No order with the given id exists."""

    code = "order_not_found"


class OrderNotCancelable(DomainError):
    """The order is already final (filled, canceled or rejected)."""

    code = "order_not_cancelable"


class ConfigError(DomainError):
    """A setting, strategy parameter or CLI option is invalid."""

    code = "config_error"


class DataError(DomainError):
    """Market data that is malformed or inconsistent (bad row, non-monotonic time, high < low).

    Parameters
    ----------
    message:
        What is wrong, with the bad value.
    source:
        File or stream the data came from.
    row:
        1-based data row number in ``source`` (header excluded), when known.
    """

    code = "data_error"

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None) -> None:
        where = ""
        if source is not None:
            where = f"{source}"
            if row is not None:
                where += f", row {row}"
            where += ": "
        super().__init__(where + message)
        self.source = source
        self.row = row


class EngineStateError(DomainError):
    """An engine operation that is invalid in the current state (start when running, etc.)."""

    code = "engine_state"


class EndOfData(EngineStateError):
    """The feed has no bar left to process (a replay at the end of its stored data)."""

    code = "end_of_data"


class VenueError(Exception):
    """A failure talking to an exchange or broker."""

    code = "venue_error"


class TransientVenueError(VenueError):
    """A venue failure that a retry with backoff can fix (timeouts, rate limits, 5xx)."""

    code = "venue_transient"


class PermanentVenueError(VenueError):
    """A venue failure that a retry cannot fix (auth, unknown symbol, rejected order)."""

    code = "venue_permanent"


class RateLimited(TransientVenueError):
    """The venue refused a request for its rate limit (HTTP 429); retry no sooner than
    ``retry_after_ms`` (ms, from its ``Retry-After``; None when it gave none)."""

    code = "venue_rate_limited"

    def __init__(self, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class VenueBanned(PermanentVenueError):
    """The venue banned this client (Binance: HTTP 418 after ignoring 429s) until
    ``until_ms`` (ms UTC): no request may be sent before then."""

    code = "venue_banned"

    def __init__(self, message: str, *, until_ms: int) -> None:
        super().__init__(message)
        self.until_ms = until_ms


class DeliveryError(Exception):
    """A failure delivering an alert to a channel (a webhook, an SMTP server). Messages never
    hold a secret (a password, a webhook URL's token)."""

    code = "delivery_error"


class TransientDeliveryError(DeliveryError):
    """A delivery failure that a retry with backoff can fix (timeouts, refused connections,
    HTTP 429 and 5xx, SMTP 4xx)."""

    code = "delivery_transient"


class PermanentDeliveryError(DeliveryError):
    """A delivery failure that a retry cannot fix (HTTP 4xx, SMTP authentication or 5xx)."""

    code = "delivery_permanent"


class ModelMismatch(DomainError):
    """A stored model that must not be loaded: its artifact differs from the sha256 in its
    metadata, or it was saved with other library versions than the running ones."""

    code = "model_mismatch"


class ModelNotFound(ConfigError):
    """No stored model has the given id (field ``model_id``)."""

    code = "model_not_found"


class NoEarlierModel(ConfigError):
    """A roll-back of a model kind and symbol with no earlier activation to return to."""

    code = "no_earlier_model"


class TrainingBusy(DomainError):
    """A training job is asked for while another one runs (one at a time)."""

    code = "training_running"


class TrainingJobNotFound(DomainError):
    """No training job has the given id (jobs are kept in memory, for this server's life)."""

    code = "training_job_not_found"


class BacktestBusy(DomainError):
    """A backtest is asked for while another one runs (one at a time)."""

    code = "backtest_running"


class BacktestNotFound(DomainError):
    """No stored or running backtest has the given id."""

    code = "backtest_not_found"
