"""The one exception type the CLI turns into a single clear line and exit code 2.

Everything a user can get wrong (an unknown name, missing data, a bad value) raises
:class:`UserError` with a message that says what is wrong and what to do. Programming errors stay
ordinary exceptions with tracebacks.
"""


class UserError(Exception):
    """A problem with the user's input or environment; its message is shown as one line."""

    exit_code = 2
