"""`lstmkit serve`: the local web page (lstmkit.serve) on 127.0.0.1."""
import ipaddress
import os
import socket
import sys

from ..data.errors import DataError
from ..data.textfile import read_text
from .common import Formatter, say

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def register(sub):
    p = sub.add_parser("serve", help="a local web page: gates, generation, translation, gradients, runs",
                       formatter_class=Formatter,
                       description="Serve the web page on this machine: Gates (heat maps of the gates over "
                                   "a text, pattern search), Generate (streamed samples, Tang poems, "
                                   "acrostics), Translate (beam hypotheses, attention), Gradients (vanishing "
                                   "gradients live) and Models (the run folders under --runs). Nothing is "
                                   "fetched from outside: it works offline.")
    p.add_argument("--runs", default="runs", metavar="DIR",
                   help="folder of run folders (lstmkit's outputs) the page lists and opens")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything but loopback lets other machines use the page "
                        "(there is no login): only with care")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    p.add_argument("--search-text", action="append", default=[], metavar="FILE",
                   help="a UTF-8 text the Gates page's pattern search reads besides each run's own texts "
                        "(repeatable; e.g. the training text)")
    p.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    p.set_defaults(func=run)


def is_loopback(host):
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host):
    """Host header names accepted: loopback names, plus the address served on."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    names = ["127.0.0.1", "localhost", "::1", "[::1]"]
    return names if is_loopback(host) else names + [host]


def bind(host, port):
    """A listening socket; one clear error when the address is taken or wrong."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise DataError(f"--host {host!r}: not an address of this machine ({e.strerror})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise DataError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run(a):
    try:
        import uvicorn
        from ..serve import create_app
        from ..serve.params import Limits
    except ImportError as e:
        raise DataError(f"lstmkit serve needs Starlette and uvicorn ({e}): pip install 'lstmkit[serve]'") from None
    if not 0 <= a.port <= 65535:
        raise DataError(f"--port: expected 0 to 65535; got {a.port}")
    if not is_loopback(a.host):
        print(f"lstmkit serve: warning: listening on {a.host}, not on loopback: anyone who can reach this "
              f"machine on port {a.port} can use the page and run the models under {a.runs}; there is no login",
              file=sys.stderr)
    if not os.path.isdir(a.runs):
        print(f"lstmkit serve: note: {a.runs}: no such folder yet; the pages list the runs that appear there",
              file=sys.stderr)
    texts = [(os.path.basename(f), read_text(f, what="search text")) for f in a.search_text]
    app = create_app(a.runs, Limits(), search_texts=texts, allowed_hosts=allowed_hosts(a.host))
    sock = bind(a.host, a.port)
    port = sock.getsockname()[1]
    shown = f"[{a.host}]" if ":" in a.host else a.host
    say(f"lstmkit serve: http://{shown}:{port}/  (runs from {os.path.abspath(a.runs)}; Ctrl-C stops)")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
