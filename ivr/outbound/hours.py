"""Campaign calling hours (IVR_CALL_HOURS): when a row may be called, in its own time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime

from ivr.errors import ConfigError

__all__ = ["CallHours"]


@dataclass(frozen=True, slots=True)
class CallHours:
    """Allowed calling hours such as 09:00-20:00 (an end before the start runs past midnight)."""

    start: dtime
    end: dtime

    @classmethod
    def parse(cls, text: str) -> CallHours:
        """Read `HH:MM-HH:MM`; ConfigError naming IVR_CALL_HOURS when it is not that."""
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text or "")
        try:
            if not match:
                raise ValueError
            h1, m1, h2, m2 = (int(part) for part in match.groups())
            start, end = dtime(h1, m1), dtime(h2, m2) if (h2, m2) != (24, 0) else dtime(0, 0)
            if start == end:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"IVR_CALL_HOURS={text!r}: give the allowed calling hours as HH:MM-HH:MM, e.g. 09:00-20:00"
            ) from None
        return cls(start, end)

    def allows(self, moment: datetime) -> bool:
        """Whether a call may start at `moment` (a local time of the row's zone)."""
        now = moment.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"
