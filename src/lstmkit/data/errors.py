"""One exception type for bad user input, so the command line can print it
as one clear line (and library callers can catch it) instead of a traceback."""


class DataError(ValueError):
    """Bad input data: the message names the file, the line and what was expected."""
