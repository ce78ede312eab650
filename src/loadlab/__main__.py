import signal
import sys

from loadlab.cli import main

code = main()
# Everything is done and cleaned up: a Ctrl-C or SIGTERM that arrives while the interpreter
# shuts down (freeing asyncpg connections, greenlets) must not turn a finished command into
# death by signal (or a crash inside a handler run half-way through finalization).
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.exit(code)
