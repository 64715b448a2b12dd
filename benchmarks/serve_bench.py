"""lstmkit serve under load, on loopback: a model trained here on real text
(Python's standard library, a character-level LSTM), the server in its own
process (`lstmkit serve --port 0`), the clients in this one.

Measured:
  gates     one request of 500 characters of held-out real text (POST /api/gates):
            round trip at the client, and the server's own time for the model (median
            of --repeats, with the 10th and 90th percentiles); target < 100 ms
  generate  2,000 tokens streamed over server-sent events (GET /api/generate): characters
            per second at the client from the first token to the last, and the time to
            the first token; target >= 200 characters/s
  load      requests per second of the gates endpoint with 1 and with 8 concurrent
            clients (keep-alive connections, one thread each) for --seconds each,
            and their latency
  page      (with --browser) the page in Debian's headless Chromium through Selenium:
            from navigation to the model list filled (page load), and from the click on
            "Show gates" to the six heat maps drawn for the 500 characters; --screenshot
            PNG saves the gates page (a shorter text, a unit clicked) for the docs

    PYTHONPATH=src .venv/bin/python benchmarks/serve_bench.py            # trains its model first (~1 min)
    PYTHONPATH=src .venv/bin/python benchmarks/serve_bench.py --run RUN  # a generate run of yours

Writes benchmarks/results/serve.json and serve.md. The machine has 2 cores,
shared: `others` is the CPU share other processes took meanwhile (quiet.py).
"""
import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))
sys.path.insert(0, HERE)
import quiet  # noqa: E402


def train_model(folder, max_chars, units, minutes):
    from lstmkit.apps import generate
    metrics, _, out = generate.train(corpus="stdlib", out=folder, max_chars=max_chars, units=units, epochs=1,
                                     max_minutes=minutes, samples=3, sample_length=400, verbose=0,
                                     log=lambda *a: None)
    print(f"trained {out}: validation {metrics['bits_per_character']:.2f} bits/character "
          f"({metrics['training']['train_seconds']:.0f} s)", flush=True)
    return out


def held_out_text(n=500):
    """500 characters of real Python source the model did not train on (a file
    from the end of the standard library, read as the corpus reader orders it)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    path = os.path.join(stdlib, "zipfile", "__init__.py")
    if not os.path.exists(path):
        path = os.path.join(stdlib, "textwrap.py")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text[5000:5000 + n]


class Server:
    def __init__(self, runs):
        env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "..", "src"))
        self.p = subprocess.Popen([sys.executable, "-m", "lstmkit", "serve", "--runs", runs, "--port", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.p.stdout.readline()
        if not line.startswith("lstmkit serve: http://"):
            raise RuntimeError(f"the server did not start: {line}{self.p.stderr.read()}")
        self.port = int(line.split("http://127.0.0.1:")[1].split("/")[0])

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=30)


def post(conn, path, body):
    data = json.dumps(body).encode()
    conn.request("POST", path, data, {"Content-Type": "application/json"})
    r = conn.getresponse()
    out = json.loads(r.read())
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {out}")
    return out


def stats(values):
    a = np.asarray(values, float)
    return {"median": float(np.median(a)), "p10": float(np.percentile(a, 10)), "p90": float(np.percentile(a, 90)),
            "n": int(a.size)}


def bench_gates(server, run, text, repeats):
    conn = server.conn()
    for _ in range(3):
        post(conn, "/api/gates", {"run": run, "text": text})             # load the model, warm up
    rtt, model_ms, server_ms, size = [], [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = post(conn, "/api/gates", {"run": run, "text": text})
        rtt.append((time.perf_counter() - t0) * 1e3)
        model_ms.append(out["compute_ms"])
        server_ms.append(out["server_ms"])
        size = sum(len(m["data"]) for m in out["maps"])
    return {"round_trip_ms": stats(rtt), "model_ms": stats(model_ms), "handler_ms": stats(server_ms),
            "tokens": out["shape"][0], "units": out["units"], "maps": len(out["maps"]),
            "payload_base64_bytes": size}


def bench_generate(server, run, tokens, repeats):
    rates, first_ms, server_rates = [], [], []
    for k in range(repeats):
        conn = server.conn()
        t0 = time.perf_counter()
        conn.request("GET", f"/api/generate?run={run}&prime=def%20&length={tokens}&seed={k}&temperature=0.8")
        r = conn.getresponse()
        assert r.status == 200, r.read()
        t_first = None
        chars, buf, done = 0, b"", None
        while done is None:
            chunk = r.read1(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                lines = dict(l.split(": ", 1) for l in block.decode("utf-8").split("\n"))
                data = json.loads(lines["data"])
                if lines["event"] == "token":
                    if t_first is None:
                        t_first = time.perf_counter()
                    chars += len(data["text"])
                    t_last = time.perf_counter()
                elif lines["event"] == "done":
                    done = data
        conn.close()
        rates.append(chars / (t_last - t_first))
        first_ms.append((t_first - t0) * 1e3)
        server_rates.append(done["chars_per_s"])
    return {"tokens": tokens, "chars_per_s_client": stats(rates), "first_token_ms": stats(first_ms),
            "chars_per_s_server": stats(server_rates)}


def bench_load(server, run, text, clients, seconds):
    lat, count, errors = [], [0] * clients, []
    stop = time.perf_counter() + seconds

    def worker(i):
        conn = server.conn()
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                post(conn, "/api/gates", {"run": run, "text": text})
                lat.append((time.perf_counter() - t0) * 1e3)
                count[i] += 1
        except Exception as e:                    # noqa: BLE001 -- reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"clients": clients, "seconds": wall, "requests": sum(count), "requests_per_s": sum(count) / wall,
            "latency_ms": stats(lat), "errors": errors[:3]}


def bench_page(server, run, text, repeats, shot=None):
    """Page load and heat-map time in a real browser (Debian's chromium and chromedriver)."""
    import shutil
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    profile = tempfile.mkdtemp(prefix="lstmkit-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,900", "--hide-scrollbars",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts)
    url = f"http://127.0.0.1:{server.port}/#/gates?run={run}"
    until = lambda f: WebDriverWait(driver, 60, poll_frequency=0.005).until(lambda d: f(d))  # noqa: E731
    load, maps = [], []
    try:
        for k in range(repeats + 1):                  # the first load warms the browser's caches up: not counted
            driver.get("about:blank")
            t0 = time.perf_counter()
            driver.get(url)
            until(lambda d: d.execute_script("return document.getElementById('gates-layer').options.length") > 0)
            t1 = time.perf_counter()
            box = driver.find_element(By.ID, "gates-text")
            driver.execute_script("arguments[0].value = arguments[1]", box, text)
            t2 = time.perf_counter()
            driver.find_element(By.ID, "gates-go").click()
            until(lambda d: d.execute_script("return document.querySelectorAll('#gates-maps canvas.heat').length") == 6)
            t3 = time.perf_counter()
            if k:
                load.append((t1 - t0) * 1e3)
                maps.append((t3 - t2) * 1e3)
        if shot:
            driver.get("about:blank")
            driver.get(url)
            until(lambda d: d.execute_script("return document.getElementById('gates-layer').options.length") > 0)
            start = text.index("\n") + 1                    # from the start of a line
            short = text[start:start + 90]
            driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.ID, "gates-text"), short)
            # two pixels a unit: all six maps of 128 units fit in the picture
            driver.execute_script("const r = document.getElementById('gates-rowh'); r.value = 2;"
                                  "r.dispatchEvent(new Event('input'))")
            driver.find_element(By.ID, "gates-go").click()
            until(lambda d: d.execute_script("return document.querySelectorAll('#gates-maps canvas.heat').length") == 6)
            canvas = driver.find_element(By.CSS_SELECTOR, "#gates-maps canvas.heat[data-map='cell_state']")
            colw, rowh = int(canvas.get_attribute("data-colw")), int(canvas.get_attribute("data-rowh"))
            w, h = canvas.size["width"], canvas.size["height"]
            # the unit whose h_t swings most over the text: its row is the one worth clicking
            out = post(server.conn(), "/api/gates", {"run": run, "text": short})
            T, H = out["shape"]
            hidden = next(m for m in out["maps"] if m["name"] == "hidden")
            v = np.frombuffer(base64.b64decode(hidden["data"]), "<f4").reshape(T, H)
            unit = int(np.argmax(v.std(axis=0)))
            t = min(T - 1, 20)
            ActionChains(driver).move_to_element_with_offset(canvas, t * colw + colw // 2 - w // 2,
                                                             unit * rowh + rowh // 2 - h // 2).click().perform()
            until(lambda d: d.find_element(By.ID, "gates-unit").is_displayed())
            driver.execute_script("document.getElementById('tooltip').hidden = true; window.scrollTo(0, 0)")
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1400, min(2600, height + 20))
            driver.execute_script("document.getElementById('tooltip').hidden = true; window.scrollTo(0, 0)")
            driver.save_screenshot(shot)
            try:                                          # a small file for the repository: 64 colours
                from PIL import Image
                Image.open(shot).convert("RGB").quantize(64).save(shot, optimize=True)
            except ImportError:
                pass
            print(f"screenshot: {shot} (unit {unit})")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return {"page_load_ms": stats(load), "heat_maps_ms": stats(maps), "repeats": repeats}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a generate run folder to serve (default: train one on the standard library)")
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--max-chars", type=int, default=1_000_000)
    p.add_argument("--minutes", type=float, default=1.5, help="training time budget")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--seconds", type=float, default=10.0, help="per load level")
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    p.add_argument("--screenshot", help="with --browser: save the gates page here (PNG)")
    a = p.parse_args()
    if a.run:                                   # its parent folder is served; the run is known by its name
        runs, run = os.path.dirname(os.path.abspath(a.run)), os.path.basename(os.path.abspath(a.run))
    else:
        runs = os.path.join(tempfile.mkdtemp(prefix="lstmkit-serve-bench-"), "runs")
        train_model(os.path.join(runs, "stdlib-lstm"), a.max_chars, a.units, a.minutes)
        run = "stdlib-lstm"
    text = held_out_text(500)
    server = Server(runs)
    meter = quiet.Meter()
    try:
        res = {"run": run, "text_chars": len(text), "machine_cores": os.cpu_count()}
        res["gates"] = bench_gates(server, run, text, a.repeats)
        res["generate"] = bench_generate(server, run, 2000, 5)
        res["load"] = [bench_load(server, run, text, c, a.seconds) for c in (1, 8)]
        if a.browser:
            res["page"] = bench_page(server, run, text, 10, a.screenshot)
    finally:
        server.stop()
    res["others_cpu_share"] = meter.others()
    g, s, lo = res["gates"], res["generate"], res["load"]
    rows = [
        ("gates, 500 characters, round trip", "ms", g["round_trip_ms"], "< 100", g["round_trip_ms"]["median"] < 100),
        ("gates, the model's own time", "ms", g["model_ms"], "", None),
        ("generate, 2,000 tokens streamed", "chars/s", s["chars_per_s_client"], ">= 200",
         s["chars_per_s_client"]["median"] >= 200),
        ("generate, first token", "ms", s["first_token_ms"], "", None),
    ]
    lines = [f"# lstmkit serve on loopback ({res['machine_cores']} cores; others took "
             f"{res['others_cpu_share']:.0%} of the CPU meanwhile)", "",
             f"Model: {run}, {g['units']} units, {g['maps']} maps of {g['tokens']} tokens "
             f"({g['payload_base64_bytes'] / 1e6:.2f} MB of base64 per gates answer).", "",
             "| what | unit | median | 10th-90th percentile | target | met |", "|---|---|---|---|---|---|"]
    for name, unit, st, target, met in rows:
        lines.append(f"| {name} | {unit} | {st['median']:.1f} | {st['p10']:.1f}-{st['p90']:.1f} | {target} | "
                     f"{'' if met is None else ('yes' if met else 'NO')} |")
    for L in lo:
        lines.append(f"| gates, {L['clients']} concurrent client(s) | requests/s | {L['requests_per_s']:.1f} | "
                     f"latency median {L['latency_ms']['median']:.0f} ms, p90 {L['latency_ms']['p90']:.0f} ms | | |")
    if "page" in res:
        pg = res["page"]
        for name, key in (("page load in Chromium, to the model list", "page_load_ms"),
                          ("500 characters: click to six heat maps drawn", "heat_maps_ms")):
            st = pg[key]
            lines.append(f"| {name} | ms | {st['median']:.0f} | {st['p10']:.0f}-{st['p90']:.0f} | | |")
    md = "\n".join(lines) + "\n"
    print(md)
    os.makedirs(a.out, exist_ok=True)
    from lstmkit.io import write_json, write_text
    write_json(os.path.join(a.out, "serve.json"), res)
    write_text(os.path.join(a.out, "serve.md"), md)


if __name__ == "__main__":
    main()
