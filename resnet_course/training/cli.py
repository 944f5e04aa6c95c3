"""What train.py and evaluate.py share: one-line errors and exit codes.

A user mistake (bad option, missing data, a file of the wrong kind) prints ONE line
``<prog>: error: <what is wrong and how to fix it>`` on stderr and exits non-zero,
without a traceback; a bug still shows its traceback.
"""
import argparse
import sys

EXIT_ERROR = 1      # the command could not do its job (bad data, model, checkpoint, ...)
EXIT_USAGE = 2      # the command line itself is wrong (argparse's convention)
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage block lists 30 model names)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog, message, code=EXIT_ERROR):
    one_line = " ".join(str(message).split())
    print(f"{prog}: error: {one_line}", file=sys.stderr)
    return code


def run_main(prog, body, user_errors, interrupted="interrupted"):
    """Call ``body()``; turn ``user_errors`` into one error line and an exit code."""
    try:
        return body() or 0
    except user_errors as err:
        return fail(prog, err)
    except KeyboardInterrupt:
        return fail(prog, interrupted, EXIT_INTERRUPTED)
