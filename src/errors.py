"""The one error a user's mistake raises (a missing or corrupt file, a bad flag, a stage run out of order), and
the one boundary every script runs its `main` inside.

A message names the file or flag and says what to do; `run_script` prints it as one line,
`<script>: <message>`, and exits with status 1 (130 after Ctrl-C). Anything else is a bug and keeps its
traceback.
"""
import errno
import os
import signal
import sys


class UserError(Exception):
    """A mistake the user can fix: str(error) is `<what is wrong>, <the file or flag>; <what to do>`."""


INTERRUPTED = 130  # the shell's status for a process ended by SIGINT
RESUME = "rerun the same command to continue (finished files are kept, partial ones were never written)"
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _os_error_message(error):
    """One line for an OSError the user's files or disk caused, or None for any other OSError."""
    path = error.filename if error.filename is not None else "a file"
    if error.errno in _FULL:
        return (f"no space left to write {path} ({error.strerror}); free space on that disk (or pass another "
                f"--io_root, or --export_smiyc for submission files) and run again: the files written before are "
                f"kept, and no partial file was left")
    if isinstance(error, FileNotFoundError):
        if error.filename is None:  # raised by our own code with a full message
            return str(error)
        return f"{path} does not exist; check the path (and the flag that names it)"
    if isinstance(error, PermissionError):
        return f"no permission to use {path}; make it readable and writable for this user, or pick another path"
    if isinstance(error, IsADirectoryError):
        return f"{path} is a directory where a file is expected; remove or rename it"
    if isinstance(error, NotADirectoryError):
        return (f"a part of {path} is a file where a directory is expected; check --io_root and --data_root, "
                f"or move the file away")
    if isinstance(error, FileExistsError):
        return f"{path} exists where a directory must be made; move it away or pick another path"
    return None


def user_message(error):
    """The one line telling the user what went wrong, or None when `error` is a bug (keep its traceback).

    Covers UserError and the OSErrors the user's files or disk cause (missing,
    not permitted, a file where a directory belongs, a full disk).
    """
    if isinstance(error, UserError):
        message = str(error)
    elif isinstance(error, OSError):
        message = _os_error_message(error)
    else:
        return None
    if message is None:
        return None
    if "Original Traceback" in message:  # re-raised from a DataLoader worker: the original's last line
        message = message.rstrip().splitlines()[-1].partition(": ")[2]
    return "; ".join(line.strip() for line in message.strip().splitlines() if line.strip())


def ignore_interrupt():
    """Initializer of worker processes: Ctrl-C reaches every process of the terminal's group, and the main
    process alone reports it (and ends the workers), so that the user sees one line, not one traceback each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_script(main, *args, interrupted=RESUME):
    """Call main(*args) as a script: a user's mistake becomes one line on stderr and exit status 1, Ctrl-C
    exit status 130 with `interrupted` (a str, or a function returning one: what the user does next).
    Returns what main returns; a bug raises on, with its traceback."""
    script = os.path.basename(sys.argv[0])
    try:
        return main(*args)
    except KeyboardInterrupt:
        text = interrupted() if callable(interrupted) else interrupted
        print(f"\n{script}: interrupted; {text}", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except Exception as error:
        message = user_message(error)
        if message is None:
            raise
        print(f"{script}: {message}", file=sys.stderr)
        sys.exit(1)
