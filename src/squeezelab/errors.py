"""The one error type users see.

Every problem a user can fix (a bad path, a bad option, a corrupt file) is raised as a
`SqueezelabError` with a one-line message that names the problem and the fix; the CLI prints it
on one line and exits with code 2, and `--debug` shows the traceback.
"""


class SqueezelabError(Exception):
    """A problem the user can fix, with a message that says how."""

    exit_code = 2


class BadFileError(SqueezelabError):
    """A file that is not what it claims to be: truncated, corrupted, wrong format or version."""


class SqueezelabWarning(UserWarning):
    """Something squeezelab changed on the user's behalf (e.g. a batch larger than the data was
    reduced to it); the CLI prints it as one line."""
