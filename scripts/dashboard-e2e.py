#!/usr/bin/env python3
"""End-to-end test of the dashboard in headless Chromium (Debian's `chromium` package).

It loads demo data into a fresh embedded store, starts redtape, opens the dashboard in
Chromium, changes the year with the year picker (as a user would: select, then submit),
reads every figure the page shows and checks it equals what the API answers for the same
year, then saves a screenshot.

    python3 scripts/dashboard-e2e.py [--binary target/debug/redtape] [--out dashboard.png]

Only the Python standard library is used: Chromium is driven over its DevTools protocol with
the small WebSocket client below, so the test downloads nothing.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


class WebSocket:
    """A minimal RFC 6455 client: text frames, masked, enough for the DevTools protocol."""

    def __init__(self, url):
        assert url.startswith("ws://"), url
        host_port, path = url[5:].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(4096)
        head, self.buffer = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise SystemExit(f"WebSocket handshake refused: {head!r}")

    def send(self, text):
        data = text.encode()
        header = bytes([0x81])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        elif len(data) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise SystemExit("DevTools connection closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            message += payload
            if b0 & 0x80:
                return message.decode()


class Page:
    """One Chromium tab, driven over the DevTools protocol."""

    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0
        self.call("Page.enable")

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise SystemExit(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_event(self, name, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("method") == name:
                return message
        raise SystemExit(f"no {name} within {seconds} s")

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise SystemExit(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")


# The figures of the ranking tables, as the page shows them.
READ_FIGURES = """
(() => {
  const out = {};
  for (const table of document.querySelectorAll('table[data-procedure]')) {
    for (const row of table.querySelectorAll('tr[data-province]')) {
      const figures = {};
      for (const cell of row.querySelectorAll('[data-figure]')) {
        figures[cell.dataset.figure] = cell.textContent.trim();
      }
      out[table.dataset.procedure + '/' + row.dataset.province] = figures;
    }
  }
  return {year: document.querySelector('[data-year]').dataset.year,
          lang: document.documentElement.lang, figures: out};
})()
"""


# The year at a glance (issue 14): national rows, tile map, breakdown tables.
READ_GLANCE = """
(() => {
  const figures = row => {
    const f = {};
    for (const cell of row.querySelectorAll('[data-figure]')) f[cell.dataset.figure] = cell.textContent.trim();
    return f;
  };
  const national = {};
  for (const row of document.querySelectorAll('table[data-table=national] tr[data-procedure]')) {
    national[row.dataset.procedure] = figures(row);
  }
  const tiles = {};
  for (const g of document.querySelectorAll('svg[data-figure=tile-map] g[data-province]')) {
    tiles[g.dataset.province] = g.dataset.meanCbi === undefined ? null : Number(g.dataset.meanCbi);
  }
  const breakdown = document.querySelector('figure.breakdown');
  const groups = {};
  for (const dim of ['woman_owned', 'size_class']) {
    groups[dim] = {};
    for (const row of document.querySelectorAll(`table[data-table=breakdown-${dim}] tr[data-group]`)) {
      groups[dim][row.dataset.group] = figures(row);
    }
  }
  const section = document.querySelector('section.glance').getBoundingClientRect();
  return {national, tiles, groups, procedure: breakdown && breakdown.dataset.procedure,
          clip: {x: section.x + window.scrollX, y: section.y + window.scrollY,
                 width: section.width, height: section.height, scale: 1}};
})()
"""


def get(url):
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def rate(value):
    """How the year at a glance writes a rate (crates/api/src/officer/glance.rs)."""
    return "\u2014" if value is None else f"{value * 100:.1f}%"


def days(value):
    return "\u2014" if value is None else f"{value:.1f}"


def check_glance(base, year, glance):
    """The year at a glance shows the API's national points, composites and breakdowns."""
    mismatches = []
    national = get(f"{base}/v1/indices?year={year}&province=all&limit=10000")["items"]
    if not national or set(glance["national"]) != {c["procedure_code"] for c in national}:
        mismatches.append(f"national rows {sorted(glance['national'])} vs API "
                          f"{sorted(c['procedure_code'] for c in national)}")
    for code, got in glance["national"].items():
        points = get(f"{base}/v1/indices/trends?procedure={code}&province=all")["items"]
        point = next(p for p in points if str(p["year"]) == str(year))
        change = point["median_working_days_change"]
        want = {"n": str(point["n"]), "median_working_days": days(point["median_working_days"]),
                "on_time_rate": rate(point["on_time_rate"]),
                "informal_payment_rate": rate(point["informal_payment_rate"])}
        for name, value in want.items():
            if not got.get(name, "").startswith(value):
                mismatches.append(f"national {code} {name}: page {got.get(name)!r}, API {value!r}")
        if change is not None:
            arrow = "\u25b2" if change > 0 else "\u25bc" if change < 0 else "="
            if f"{change:+.1f}" not in got["median_working_days_change"] and change != 0 \
                    or arrow not in got["median_working_days_change"]:
                mismatches.append(f"national {code} change: page "
                                  f"{got['median_working_days_change']!r}, API {change}")
    if len(glance["tiles"]) != 34:
        mismatches.append(f"{len(glance['tiles'])} tiles, not 34")
    composites = {c["province_code"]: c["mean_cbi"]
                  for c in get(f"{base}/v1/indices/provinces?year={year}&limit=10000")["items"]}
    for code, value in glance["tiles"].items():
        if composites.get(code) != value:
            mismatches.append(f"tile {code}: page {value}, API {composites.get(code)}")
    procedure = glance["procedure"]
    for dim, rows in glance["groups"].items():
        api = get(f"{base}/v1/indices/breakdowns?year={year}&procedure={procedure}"
                  f"&dimension={dim}")["items"]
        if set(rows) != {c["group"] for c in api}:
            mismatches.append(f"{dim} groups {sorted(rows)} vs API {sorted(c['group'] for c in api)}")
        for c in api:
            got = rows.get(c["group"], {})
            for name, value in {"n": str(c["n"]),
                                "median_working_days": days(c["median_working_days"])}.items():
                if got.get(name) != value:
                    mismatches.append(f"{dim}={c['group']} {name}: page {got.get(name)!r}, "
                                      f"API {value!r}")
    if mismatches:
        raise SystemExit("year at a glance and API differ:\n" + "\n".join(mismatches[:20]))
    return len(glance["national"])


def shown(value):
    """How the dashboard writes a number (see crates/api/src/dashboard.rs)."""
    if value is None:
        return "\u2014"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/debug/redtape")
    parser.add_argument("--out", default="target/dashboard-e2e.png")
    parser.add_argument("--submissions", type=int, default=20000)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")

    work = tempfile.mkdtemp(prefix="redtape-e2e-")
    env = dict(os.environ, DATABASE_URL=f"sqlite://{work}/e2e.sqlite")
    processes = []
    try:
        subprocess.run(
            [args.binary, "--log", "error", "demo-data", "--submissions",
             str(args.submissions), "--import"],
            env=env, check=True,
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        processes.append(subprocess.Popen(
            [args.binary, "--log", "error", "serve", "--bind", f"127.0.0.1:{port}"],
            env=env, stderr=subprocess.DEVNULL,
        ))
        wait_for(f"{base}/readyz")
        debug_port = free_port()
        processes.append(subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--remote-debugging-port={debug_port}", f"--user-data-dir={work}/chromium",
             "--window-size=1280,2000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        targets = json.loads(wait_for(f"http://127.0.0.1:{debug_port}/json/list"))
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])

        page.call("Page.navigate", url=f"{base}/?lang=en")
        page.wait_event("Page.loadEventFired")
        first = page.evaluate(READ_FIGURES)
        years = page.evaluate(
            "[...document.querySelectorAll('#year option')].map(o => o.value)")
        if len(years) < 2:
            raise SystemExit(f"the year picker offers {years}: demo data should span years")
        # Change the year as a user would: pick it, then submit the form.
        target_year = years[1]
        page.evaluate(
            f"document.querySelector('#year').value = '{target_year}';"
            "document.querySelector('form.picker button').click();")
        page.wait_event("Page.loadEventFired")
        shown_page = page.evaluate(READ_FIGURES)
        if shown_page["year"] != target_year or shown_page["year"] == first["year"]:
            raise SystemExit(f"the year did not change: {first['year']} -> {shown_page['year']}")

        with urllib.request.urlopen(f"{base}/v1/indices?year={target_year}&limit=10000") as r:
            cells = json.load(r)["items"]
        expected = {
            f"{c['procedure_code']}/{c['province_code']}": {
                "cbi": shown(c["cbi"]),
                "median_working_days": shown(c["median_working_days"]),
                "median_scm_cost_vnd": shown(c["median_scm_cost_vnd"]),
                "n": str(c["n"]),
            }
            for c in cells
            # National cells are the year at a glance's (checked below), not the tables'.
            if c["province_code"] != "all"
        }
        mismatches = []
        for key, want in expected.items():
            got = shown_page["figures"].get(key)
            if got is None:
                mismatches.append(f"{key}: not on the page")
                continue
            for name, value in want.items():
                if got.get(name) != value:
                    mismatches.append(f"{key} {name}: page {got.get(name)!r}, API {value!r}")
        extra = set(shown_page["figures"]) - set(expected)
        mismatches.extend(f"{key}: on the page, not in the API" for key in sorted(extra))
        if mismatches:
            raise SystemExit("dashboard and API differ:\n" + "\n".join(mismatches[:20]))

        glance = page.evaluate(READ_GLANCE)
        procedures = check_glance(base, target_year, glance)

        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        # The overview alone: what a reform office prints as the year's report.
        overview = os.path.splitext(args.out)[0] + "-overview.png"
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip=glance["clip"])
        with open(overview, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print(f"dashboard e2e: year {first['year']} -> {target_year}, {len(expected)} cells "
              f"and the year at a glance ({procedures} procedures, 34 tiles, breakdowns of "
              f"{glance['procedure']}) match the API; screenshots {args.out}, {overview}")
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
