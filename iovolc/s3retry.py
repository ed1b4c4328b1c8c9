"""Retries and timeouts of the S3 client (s3fs over aiobotocore), in one place.

The S3 client stack has three retry layers; we use one, on purpose:

* **aiohttp** resends an idempotent request (GET/HEAD/PUT/DELETE) once when
  a *reused* keep-alive connection turns out closed (RFC 9112 9.3.1). Left as
  is: it costs no sleep and only covers stale pooled connections.
* **botocore** (inside each s3fs attempt): **off** (``total_max_attempts``
  1). Its backoff is ``rand(0, 1) * 2**attempt`` s (first retry 0.5 s on
  average, then 1, 2 s ...), not settable through ``Config``; standard mode
  also spends a per-client retry quota (500 tokens, 5-14 per retry) that 20 %
  faults drain within a few thousand requests; and it never covers reading
  the response body. With it on (the default: legacy mode, 5 attempts,
  under s3fs's 5), a PJ57 run under 20 % faults took 178 s against 66 s
  fault-free here (an outside check: 585 s against 89 s), mostly in these
  sleeps.
* **s3fs** (``_error_wrapper`` around every call, *including* the body read
  of ``cat_file``): **the retry layer**, :data:`RETRIES` attempts per call
  with its short fixed backoff ``min(0.1 * 1.7**i, 15)`` s: 0.1, 0.17, 0.29,
  0.49, 0.84, 1.4, 2.4, 4.1, 7.0 s, i.e. ~17 s of waiting before the last
  attempt and ~29 s before giving up. At 20 % independent faults a call
  fails for good with probability 0.2**10 = 1e-7 (a PJ57 run makes ~2,600
  requests), and a faulted call waits 0.1 s, not 0.5 s: the same run then
  took 71 s against 54 s (1.3x). On a real S3 a
  ~30 s window rides out a SlowDown burst or a short brown-out; longer
  outages should fail the task, which Prefect retries with its own backoff.

s3fs retries connection errors, truncated bodies, timeouts and ``SlowDown``
by itself; :func:`is_retryable` adds what it leaves out: HTTP 500/502/503/504
(``InternalError``, ``ServiceUnavailable``, a 503 on HEAD has no code
string), ``RequestTimeout``, throttling codes, and connection failures that
botocore reports as ``EndpointConnectionError``/``ConnectTimeoutError``. Never
retried: other 4xx (credentials, missing keys, a refused conditional write,
412) and TLS certificate errors.

Timeouts (botocore ``Config``, applied per socket operation, not per request):

* :data:`CONNECT_TIMEOUT_S` = 5 s: loopback and LAN connect in < 1 ms, AWS
  with TLS in < 1 s; 5 s still covers two lost SYNs (Linux retransmits at 1
  s and 3 s).
* :data:`READ_TIMEOUT_S` = 15 s: the longest wait for the next bytes of a
  response. Our largest objects are a few MB (a calibrated FITS), and S3 or
  SeaweedFS answer a PUT or a same-bucket copy of that size within a second
  or two; 15 s leaves room for a busy 2-core machine. It bounds a *hung*
  request (no response, connection open): each one costs exactly this long,
  whatever the retry policy, which is why hangs are not part of the 20 %
  fault benchmark (``bench/s3_faults.py``).

The s3fs layer is configured process-wide (:func:`install`: the class
attribute ``S3FileSystem.retries`` and s3fs's custom error handler, which is
global), because an fsspec storage option cannot carry it;
:meth:`iovolc.settings.Settings.storage_options` calls :func:`install` for
every ``s3://`` URL, so every process that opens our S3 store through the
settings has it. The botocore part travels in the storage options
(:func:`config_kwargs`), JSON-serialisable, so Prefect's result-storage block
gets it too. Measured numbers: ``docs/decisions.md``, "S3 retries and
timeouts (issue 10)".
"""

from __future__ import annotations

import threading
from typing import Any

#: s3fs attempts per call (its class default is 5)
RETRIES = 10
#: botocore connect and read timeouts, seconds (see the module docstring)
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 15
#: botocore's own retry layer: one attempt, i.e. off (s3fs retries instead)
BOTOCORE_RETRIES: dict[str, Any] = {"mode": "standard", "total_max_attempts": 1}

#: HTTP statuses and S3 error codes worth another attempt
RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_CODES = frozenset({
    "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "RequestTimeoutException",
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestLimitExceeded", "TooManyRequestsException", "BandwidthLimitExceeded",
    "500", "502", "503", "504",
})

_lock = threading.Lock()
_installed = False


def config_kwargs() -> dict[str, Any]:
    """botocore ``Config`` arguments for s3fs's ``config_kwargs`` (a fresh dict)."""
    return {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S,
            "retries": dict(BOTOCORE_RETRIES)}


def is_retryable(exc: BaseException) -> bool:
    """True for a transient S3 failure that s3fs would not retry by itself."""
    from botocore.exceptions import ClientError, ConnectionError, SSLError

    if isinstance(exc, ClientError):
        response = getattr(exc, "response", None) or {}
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(response.get("Error", {}).get("Code", ""))
        return status in RETRY_STATUSES or code in RETRY_CODES
    if isinstance(exc, SSLError):
        return False
    if isinstance(exc, ConnectionError):  # botocore's: EndpointConnectionError, ConnectTimeout
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - s3fs depends on it
        return False
    return isinstance(exc, aiohttp.ClientConnectionError) and not isinstance(
        exc, aiohttp.ClientSSLError)


def install() -> None:
    """Make s3fs retry :data:`RETRIES` times and on :func:`is_retryable` errors.

    Process-wide and idempotent. A custom error handler installed before is
    kept (asked when ours says no); a higher ``S3FileSystem.retries`` is kept.
    """
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        import s3fs.core

        previous = s3fs.core.CUSTOM_ERROR_HANDLER

        def handler(exc: BaseException) -> bool:
            return is_retryable(exc) or bool(previous(exc))

        handler.__qualname__ = "iovolc.s3retry.handler"
        s3fs.core.set_custom_error_handler(handler)
        if s3fs.core.S3FileSystem.retries < RETRIES:
            s3fs.core.S3FileSystem.retries = RETRIES
        _installed = True
