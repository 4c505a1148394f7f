"""The watchdog process itself (see watchdog.py): run as a script, with nothing of devhttps imported.

Reads process-group ids on its standard input, `N` to watch and `-N` to forget; at the end of its input (devhttps
ended, however it ended) it stops the groups still watched: SIGTERM, then SIGKILL after the grace in argv[1].
"""

import os
import signal
import sys
import time


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl+C is for devhttps, which stops the groups itself
    grace = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    groups: set[int] = set()
    for line in sys.stdin:
        word = line.strip()
        if word.startswith("-"):
            groups.discard(int(word[1:]))
        elif word:
            groups.add(int(word))
    for sig, pause in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        for group in groups:
            try:
                os.killpg(group, sig)
            except OSError:
                pass
        if groups:
            time.sleep(pause)


if __name__ == "__main__":
    main()
