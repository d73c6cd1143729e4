"""Headless Chromium check of an exported release site: every page renders, links resolve, images load.

The site is served on 127.0.0.1; a harness page loads every page in an iframe, decodes every image, fetches
every internal link and looks up every ``#anchor``, then POSTs its findings back. A control page with a missing
image and a dead link must be reported as broken, so the check cannot pass vacuously.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]

HARNESS = """<!DOCTYPE html><html><body><pre id="out">pending</pre><script>
const pages = %s;
async function check(p) {
  const r = {title: "", h1: "", images: 0, broken_images: [], links: 0, broken_links: [], external: 0,
             missing_anchors: [], styled: false};
  const frame = document.createElement("iframe");
  frame.style.width = "1280px"; frame.style.height = "1000px";
  document.body.appendChild(frame);
  await new Promise(res => { frame.onload = res; frame.src = "site/" + p; });
  const doc = frame.contentDocument;
  await Promise.all(Array.from(doc.images).map(i => i.decode().catch(() => null)));
  r.title = doc.title; r.h1 = doc.querySelector("h1") ? doc.querySelector("h1").textContent.trim() : "";
  for (const img of doc.images) {
    if (img.naturalWidth > 0 && img.naturalHeight > 0) r.images++; else r.broken_images.push(img.getAttribute("src"));
  }
  for (const a of doc.querySelectorAll("a[href]")) {
    const href = a.getAttribute("href");
    if (/^https?:/.test(href)) { r.external++; continue; }
    const url = new URL(href, frame.contentWindow.location.href);
    const resp = await fetch(url.href.split("#")[0]);
    if (!resp.ok) { r.broken_links.push(href); continue; }
    r.links++;
    if (url.hash) {
      const target = new DOMParser().parseFromString(await resp.text(), "text/html");
      if (!target.getElementById(url.hash.slice(1))) r.missing_anchors.push(href);
    }
  }
  r.styled = getComputedStyle(doc.querySelector("header.top")).backgroundColor === "rgb(16, 40, 74)";
  return r;
}
(async () => {
  const results = {};
  try { for (const p of pages) results[p] = await check(p); }
  catch (e) { results.error = String(e); }
  document.getElementById("out").textContent = JSON.stringify(results);
  await fetch("/results", {method: "POST", body: JSON.stringify(results)});
})();
</script></body></html>
"""


class _Server(http.server.ThreadingHTTPServer):
    results: list[bytes]
    done: threading.Event


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; the harness page POSTs its findings to ``/results``."""

    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.results.append(body)
        self.send_response(204)
        self.end_headers()
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def browse_site(site: Path, work: Path, *, screenshot: Path | None = None) -> dict[str, dict[str, Any]]:
    """Findings per page (``records/x.html`` -> title, h1, images, broken_images, links, broken_links,
    missing_anchors, styled) for every page of ``site``; asserts the control page was caught. With
    ``screenshot``, also writes a 1280x1700 PNG of the index page there."""
    root = work / "www"
    shutil.copytree(site, root / "site")
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    server.results, server.done = [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        pages = sorted(p.relative_to(root / "site").as_posix() for p in (root / "site").rglob("*.html"))
        (root / "site" / "zz-control.html").write_text('<title>c</title><h1>c</h1><img src="nope.png">'
                                                       '<a href="missing.html">dead</a><header class="top"></header>')
        (root / "check.html").write_text(HARNESS % json.dumps([*pages, "zz-control.html"]))
        browser = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={work / 'chromium-check'}",
                                    f"{base}/check.html"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        try:
            finished = server.done.wait(180)
        finally:
            browser.terminate()
            try:
                _, err = browser.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                browser.kill()
                _, err = browser.communicate()
        assert finished, f"the harness page did not report back: {err[-2000:]}"
        results: dict[str, Any] = json.loads(server.results[0])
        assert "error" not in results, results
        control = results.pop("zz-control.html")
        assert control["broken_images"] == ["nope.png"] and control["broken_links"] == ["missing.html"]
        assert sorted(results) == pages
        if screenshot is not None:
            proc = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={work / 'chromium-shot'}",
                                   "--window-size=1280,1700", f"--screenshot={screenshot}",
                                   f"{base}/site/index.html"], capture_output=True, text=True, timeout=120,
                                  check=False)
            assert screenshot.is_file() and screenshot.stat().st_size > 20_000, proc.stderr[-2000:]
        return results
    finally:
        server.shutdown()
        server.server_close()


def assert_pages_sound(results: dict[str, dict[str, Any]]) -> None:
    """Every page has a title and heading, no broken image, link or anchor, the site's style, and a link."""
    for page, r in results.items():
        assert r["h1"] and r["title"], page
        assert r["broken_images"] == [] and r["broken_links"] == [] and r["missing_anchors"] == [], (page, r)
        assert r["styled"], page
        assert r["links"] >= 1, page
