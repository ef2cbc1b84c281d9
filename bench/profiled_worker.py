"""``python -m bench.profiled_worker``: the real worker under cProfile. SIGHUP writes the stats to
``$BENCH_PROFILE`` and ends the process at once (mode's worker owns SIGTERM, SIGINT, SIGUSR1 and SIGUSR2)."""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from types import FrameType


def main() -> None:
    profiler = cProfile.Profile()

    def dump(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(os.environ["BENCH_PROFILE"])
        os._exit(0)

    signal.signal(signal.SIGHUP, dump)
    sys.argv = ["alarmflow", "worker"]
    from streams.cli import main as cli

    profiler.enable()
    cli()


if __name__ == "__main__":
    main()
