"""The local stack's stand-in for the bucket lifecycle rules that remove unfinished direct uploads.

moto runs no lifecycle rules, so this thread expires uploads whose `expires_at` passed: their parts
and bytes go, and completing them answers 410, as in AWS (where the record's expiry does the same
on the next completion, and the lifecycle removes the bytes of uploads nobody asks about again).
"""

from __future__ import annotations

import threading

from ksflow.observability import logger
from ksflow.uploads import service

SWEEP_SECONDS = 60.0


def start(stop: threading.Event, interval: float = SWEEP_SECONDS) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            try:
                swept = service.sweep_expired()
            except Exception:
                logger.exception("Sweeping expired uploads failed")
                continue
            if swept:
                logger.info("Expired uploads removed", extra={"uploads": swept})

    thread = threading.Thread(target=loop, name="local-upload-sweeper", daemon=True)
    thread.start()
    return thread
