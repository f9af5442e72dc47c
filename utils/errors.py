"""The one error type for mistakes a user can fix (bad flag, missing file, ...)."""


class UserError(ValueError):
    """A one-sentence message for the user; command-line tools exit with status 2.

    It subclasses ValueError so library callers can catch it as the ValueError
    the API documents.
    """
