"""Background priority for the processes that index: the daemon and the editor's server.

With `lowPriority` (the default) they run at nice 10 and in the idle I/O class on Linux
(below-normal priority and background I/O on Windows; nice on macOS), so an embedding
batch gives way to the editor, a build or anything else the user runs; on an idle machine
it runs as fast as before. psutil does the platform work. Search answers come from the
same process: on a saturated machine they wait like the indexing does.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

NICE = 10


def lower_priority(enabled: bool) -> str:
    """Lower this process's CPU and I/O priority; what was done, for the log and `doctor`."""
    if not enabled:
        return "normal priority (lowPriority is off)"
    import psutil

    proc = psutil.Process()
    done: list[str] = []
    try:
        if sys.platform == "win32":
            proc.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
            done.append("below-normal CPU priority")
        else:
            current = proc.nice()
            if current < NICE:
                proc.nice(NICE)
            done.append(f"nice {max(current, NICE)}")
    except (psutil.Error, OSError) as exc:
        log.info("could not lower the CPU priority: %s", exc)
    try:
        if sys.platform.startswith("linux"):
            proc.ionice(psutil.IOPRIO_CLASS_IDLE)
            done.append("idle I/O class")
        elif sys.platform == "win32":
            proc.ionice(psutil.IOPRIO_LOW)
            done.append("low I/O priority")
    except (psutil.Error, OSError, AttributeError) as exc:
        log.info("could not lower the I/O priority: %s", exc)
    text = ", ".join(done) or "priority unchanged"
    log.info("indexing at low priority: %s", text)
    return text
