"""``errors.report``: what the webui does with an exception in a script hook (logs it,
generation goes on). Recorded in ``reported`` for the tests."""

from __future__ import annotations

import traceback

reported: list[str] = []


def report(message: str, *, exc_info: bool = False) -> None:
    text = message
    if exc_info:
        text += "\n" + traceback.format_exc()
    reported.append(text)
    print(f"*** {text}")
