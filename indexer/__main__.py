"""The `dtindex` command's entry (`python -m indexer` and the console script).

Ctrl-C while the command's modules are being imported (argparse, the CLI, then what a
command pulls in: tenths of a second) would raise KeyboardInterrupt inside an import and
print its traceback. So this module imports nothing of dtindex: `main` first makes SIGINT
end the process as interrupted, then imports the CLI, whose `main` takes over. A decoder
process spawned by the command imports this module again, as `__mp_main__`: it only
defines `main`.
"""

import os
import signal

INTERRUPTED = 128 + signal.SIGINT


def _interrupted(_signum: int, _frame: object) -> None:
    """The same last words and status as a Ctrl-C once the command runs (`cli.main`)."""
    try:
        os.write(2, b"dtindex: interrupted\n")
    finally:
        os._exit(INTERRUPTED)


def main() -> None:
    signal.signal(signal.SIGINT, _interrupted)
    from indexer.cli.main import main_entry

    main_entry()


if __name__ == "__main__":
    main()
