"""The ASGI app behind `lstmkit serve`: a JSON API, one event stream, and the
static page (plain HTML, CSS and JavaScript from this package; nothing is
fetched from anywhere else, so it works offline).

    GET  /api/info                server, limits, pages
    GET  /api/runs                the run folders under --runs
    GET  /api/run?id=ID           one run: metrics, history; /api/run/history.png?id=ID its plot
    GET  /api/layers?run=ID       the recurrent layers the Gates page can show
    POST /api/gates               {run, text, layer} -> tokens and heat maps
    POST /api/gates/search        {run, text, layer, map, start, end, threshold, top} -> passages
    GET  /api/generate?run=ID&... server-sent events: start, token..., done (or failed)
    POST /api/translate           {run, text, beam, alpha} -> hypotheses with attention
    POST /api/gradients           {cells, steps, units, batch, weight_scale, forget_bias, seed}

Security: the server binds to 127.0.0.1 unless told otherwise (cli/serve.py);
requests must name the host it serves (no DNS rebinding), POST bodies must be
JSON (a form on another site cannot post here without a CORS preflight,
which the server does not answer), bodies and texts are bounded (params.py),
runs are chosen by id from the server's own list (runs.py), and the model
work runs in a thread pool so one slow request does not hold up the others.
"""
import functools
import json
import os
import sys
import threading
import time
import traceback

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..data.errors import DataError
from . import gates, generation, gradients, translation
from . import params as P
from .runs import Registry, summary

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
LOOPBACK = ["127.0.0.1", "localhost", "::1", "[::1]"]
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


# ---- middleware ---------------------------------------------------------------------------------

class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses a request body over max_bytes (413), by its Content-Length or
    as it arrives, before any handler reads it whole."""

    def __init__(self, app, max_bytes):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    return await _too_large(limit)(scope, receive, send)
        received, started = 0, False

        async def limited_receive():
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return msg

        async def tracking_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(limit)(scope, receive, send)


def _too_large(limit):
    return JSONResponse({"error": f"request body larger than {limit:,} bytes"}, status_code=413)


class SecurityHeaders:
    """No sniffing, no framing, no referrer, scripts only from this server."""

    HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
               (b"cache-control", b"no-store")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(msg):
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [h for h in self.HEADERS if h[0] not in have]
            await send(msg)

        await self.app(scope, receive, with_headers)


# ---- handlers -----------------------------------------------------------------------------------

def api(handler):
    """JSON errors in one line: RequestError with its status, DataError as 400,
    anything else as 500 (the traceback goes to the server's terminal)."""
    @functools.wraps(handler)
    async def wrapped(request):
        try:
            return await handler(request)
        except P.RequestError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except DataError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except Exception as e:                            # a bug: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            msg = " ".join(str(e).split()) or type(e).__name__
            return JSONResponse({"error": f"internal error: {type(e).__name__}: {msg}"}, status_code=500)
    return wrapped


async def json_body(request):
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise P.RequestError(f"expected a JSON body (Content-Type: application/json); got {ctype or 'none'!r}",
                             415)
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise P.RequestError(f"the body is not valid JSON ({e})") from None
    if not isinstance(body, dict):
        raise P.RequestError("expected a JSON object as the body")
    return body


class Slots:
    """At most n at once; the (n+1)-th is told the server is busy (503)."""

    def __init__(self, n, what):
        self.sem, self.n, self.what = threading.BoundedSemaphore(n), n, what

    def take(self):
        if not self.sem.acquire(blocking=False):
            raise P.RequestError(f"busy: {self.n} {self.what} running already; try again in a moment", 503)

    def give(self):
        self.sem.release()


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


def create_app(runs_dir=None, limits=None, search_texts=(), allowed_hosts=None):
    """The Starlette app. runs_dir: the folder whose run folders the pages may
    open; search_texts: [(name, text)] the pattern search reads beside each
    run's own texts; allowed_hosts: Host names requests may carry (loopback
    names by default; ["*"] for any)."""
    limits = limits or P.Limits()
    registry = Registry(runs_dir, limits, search_texts)
    streams = Slots(limits.streams, "generations are")
    heavy = Slots(limits.heavy_jobs, "gradient experiments are")

    async def index(request):
        return FileResponse(os.path.join(STATIC, "index.html"), media_type="text/html")

    @api
    async def info(request):
        return JSONResponse({"version": __version__, "runs_dir": registry.root,
                             "pages": ["gates", "generate", "translate", "gradients", "models"],
                             "limits": limits.to_dict(), "search_texts": [n for n, _ in registry.search_texts],
                             "map_titles": gates.TITLES})

    @api
    async def runs(request):
        found = await run_in_threadpool(registry.runs)
        return JSONResponse({"runs_dir": registry.root, "runs": [summary(i) for i in found.values()]})

    @api
    async def run_detail(request):
        info_ = await run_in_threadpool(registry.info, request.query_params.get("id"))
        return JSONResponse(summary(info_, full=True))

    @api
    async def history_png(request):
        info_ = await run_in_threadpool(registry.info, request.query_params.get("id"))
        if info_.history_png is None:
            raise P.RequestError(f"run {info_.id!r}: no history.png", 404)
        return FileResponse(info_.history_png, media_type="image/png")

    @api
    async def layers(request):
        run = await run_in_threadpool(registry.load, request.query_params.get("run"))
        return JSONResponse({"run": run.info.id, "app": run.app, "layers": [p.label for p in run.probes()],
                             "cells": [p.layer.cell for p in run.probes()],
                             "units": [p.layer.units for p in run.probes()],
                             "joiner": gates.joiner(run), "poetry": bool(getattr(run, "poetry", False)),
                             "vocab": getattr(getattr(run, "tok", None), "vocab_size", None)})

    @api
    async def gates_(request):
        body = await json_body(request)
        text = P.text(body, "text", limits.gates_chars)
        layer = P.integer(body, "layer", 0, 64, 0)
        run = await run_in_threadpool(registry.load, body.get("run"))
        t0 = time.perf_counter()
        out = await run_in_threadpool(gates.gates_response, run, text, layer, limits)
        out["server_ms"] = (time.perf_counter() - t0) * 1e3
        return JSONResponse(out)

    @api
    async def gates_search(request):
        body = await json_body(request)
        text = P.text(body, "text", limits.gates_chars)
        layer = P.integer(body, "layer", 0, 64, 0)
        name = P.choice(body, "map", gates.ORDER, "hidden")
        start = P.integer(body, "start", 0, limits.gates_chars)
        end = P.integer(body, "end", 0, limits.gates_chars)
        threshold = P.number(body, "threshold", -100.0, 100.0, 0.3)
        top = P.integer(body, "top", 1, limits.search_results, 10)
        run = await run_in_threadpool(registry.load, body.get("run"))
        out = await run_in_threadpool(gates.search, run, text, layer, name, start, end, threshold, top, limits,
                                      registry.search_texts)
        return JSONResponse(out)

    @api
    async def generate(request):
        q = dict(request.query_params)
        run = await run_in_threadpool(registry.load, q.get("run"), ("generate",))
        s = generation.read_request(q, run, limits)
        streams.take()
        try:
            it = generation.pieces(run, s)
            first = await run_in_threadpool(next, it, None)       # settings errors come here, as a 400
        except BaseException:
            streams.give()
            raise

        async def events():
            n, chars, t0 = 0, 0, time.perf_counter()
            try:
                yield sse("start", {"mode": s["mode"], "prime": s["prime"] if s["mode"] == "text" else "",
                                    "settings": s})
                piece = first
                while piece is not None:
                    n, chars = n + 1, chars + len(piece)
                    yield sse("token", {"text": piece})
                    piece = await run_in_threadpool(next, it, None)
                dt = time.perf_counter() - t0
                yield sse("done", {"tokens": n, "chars": chars, "seconds": dt, "chars_per_s": chars / max(dt, 1e-9)})
            except DataError as e:
                yield sse("failed", {"error": str(e)})
            finally:
                streams.give()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    @api
    async def translate(request):
        body = await json_body(request)
        text = P.text(body, "text", limits.translate_chars)
        beam = P.integer(body, "beam", 1, limits.beam, 5)
        alpha = P.number(body, "alpha", 0.0, 2.0, 0.6)
        run = await run_in_threadpool(registry.load, body.get("run"), ("translate",))
        return JSONResponse(await run_in_threadpool(translation.translate, run, text, beam, alpha))

    @api
    async def gradients_(request):
        body = await json_body(request)
        cells = body.get("cells", list(gradients.CELLS))
        if not isinstance(cells, list) or not cells or any(c not in gradients.CELLS for c in cells):
            raise P.RequestError(f"cells: expected a list of some of {', '.join(gradients.CELLS)}; got {cells!r}")
        args = dict(cells=[c for c in gradients.CELLS if c in cells],
                    steps=P.integer(body, "steps", 2, limits.gradient_steps, 200),
                    units=P.integer(body, "units", 2, limits.gradient_units, 32),
                    batch=P.integer(body, "batch", 1, limits.gradient_batch, 8),
                    weight_scale=P.number(body, "weight_scale", 0.05, 5.0, 1.0),
                    forget_bias=P.number(body, "forget_bias", -5.0, 5.0, 1.0),
                    seed=P.integer(body, "seed", 0, 2**31 - 1, 0))
        heavy.take()
        try:
            return JSONResponse(await run_in_threadpool(gradients.experiment, **args))
        finally:
            heavy.give()

    routes = [
        Route("/", index),
        Route("/api/info", info),
        Route("/api/runs", runs),
        Route("/api/run", run_detail),
        Route("/api/run/history.png", history_png),
        Route("/api/layers", layers),
        Route("/api/gates", gates_, methods=["POST"]),
        Route("/api/gates/search", gates_search, methods=["POST"]),
        Route("/api/generate", generate),
        Route("/api/translate", translate, methods=["POST"]),
        Route("/api/gradients", gradients_, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders),
                  Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK),
                  Middleware(BodyLimit, max_bytes=limits.body_bytes)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.registry = registry
    app.state.limits = limits
    return app
