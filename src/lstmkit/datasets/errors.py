"""The data cache's errors: one line each, naming the command that helps.

Both are DataError (a ValueError), which the command line prints as one line.
"""
from ..data.errors import DataError


class DataMissing(DataError):
    """A data set is not on this machine (not cached, no system copy), or could not be fetched."""


class FetchError(DataMissing):
    """Fetching failed: the client is missing or failed, the download's SHA-256 differs from the pin,
    or the package could not be unpacked. Nothing half-made is left in the cache."""
