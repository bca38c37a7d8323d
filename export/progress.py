"""Progress on stderr for long steps: one line per stage, a live counter on terminals."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


class Progress:
    """Prints stage messages; ``counter`` returns a callable advancing a live count."""

    def __init__(self, stream=None, prefix: str = "[lstm-zoo]"):
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self.live = getattr(self.stream, "isatty", lambda: False)()

    def say(self, message: str) -> None:
        print(f"{self.prefix} {message}", file=self.stream, flush=True)

    def counter(self, label: str, total: int) -> Callable[[int], None]:
        self.say(f"{label} ({total})")
        if not self.live:
            return lambda _n: None
        state = {"done": 0, "shown": 0.0}

        def advance(n: int) -> None:
            state["done"] += n
            now = time.monotonic()
            if now - state["shown"] > 0.2 or state["done"] >= total:
                state["shown"] = now
                end = "\n" if state["done"] >= total else ""
                print(f"\r{self.prefix}   {state['done']}/{total}", end=end, file=self.stream,
                      flush=True)

        return advance


class Silent(Progress):
    def say(self, message: str) -> None:
        pass

    def counter(self, label: str, total: int) -> Callable[[int], None]:
        return lambda _n: None
