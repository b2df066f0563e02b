"""The memory the front end's routes (inspect, upload) may decode into at once.

Each request holds, while it decodes, what its file's declared sizes say it will take
(tensors, image file, environment) and then what its thumbnail's decode takes. The sum
over the requests running at once stays under the budget: a request that does not fit
is answered 503 at once, so a burst of requests for files that are each legitimate cannot
add up to gigabytes (the executor's thread count would be the only bound otherwise).

The budget is ``$RAIIAF_SERVER_DECODE_BUDGET`` (bytes, or e.g. ``1G``), read when the
first request needs it; default :data:`DEFAULT_BUDGET`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from raiiaf_rs import host as raiiaf_host

ENV = "RAIIAF_SERVER_DECODE_BUDGET"
#: Two files at the routes' decoded-size limit (256 MiB) at once.
DEFAULT_BUDGET = 512 << 20
#: What a read takes beyond its declared sizes (hashing and decoding windows), per request.
READ_OVERHEAD = 16 << 20


class BudgetError(Exception):
    """No room for a decode: ``status`` 503 when busy (retry), 413 when it never fits."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DecodeBudget:
    """A byte budget shared by threads; :meth:`hold` takes a part of it or refuses."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, nbytes: int, what: str) -> Iterator[None]:
        """Hold ``nbytes`` of the budget while the block runs; BudgetError if they do not
        fit now (503) or ever (413). ``what`` names the file for the message."""
        nbytes = max(0, int(nbytes))
        with self._lock:
            if nbytes > self.total:
                raise BudgetError(
                    f"{what}: decoding it needs {nbytes:,} bytes, more than this server's "
                    f"decode budget of {self.total:,} (set {ENV} to raise it)",
                    413,
                )
            if self.used + nbytes > self.total:
                raise BudgetError(
                    f"{what}: the server is busy decoding other files ({self.used:,} of its "
                    f"{self.total:,}-byte decode budget in use, {nbytes:,} needed); try again "
                    f"in a moment (the budget is set by {ENV})",
                    503,
                )
            self.used += nbytes
        try:
            yield
        finally:
            with self._lock:
                self.used -= nbytes


_budget: DecodeBudget | None = None
_budget_lock = threading.Lock()


def budget() -> DecodeBudget:
    """The server's budget (created from the environment on first use)."""
    global _budget
    with _budget_lock:
        if _budget is None:
            text = os.environ.get(ENV)
            try:
                total = raiiaf_host.parse_byte_size(text) if text else DEFAULT_BUDGET
            except ValueError as e:
                print(f"[raiiaf] {ENV}: {e}; using the default {DEFAULT_BUDGET:,}")
                total = DEFAULT_BUDGET
            _budget = DecodeBudget(total)
        return _budget
