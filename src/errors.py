"""The one error a user's mistake raises (a missing or corrupt file, a bad flag, a stage run out of order).

Its message names the file or flag and says what to do; each entry script prints it as one line and
exits with status 1. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix: str(error) is `<what is wrong>, <the file or flag>; <what to do>`."""
