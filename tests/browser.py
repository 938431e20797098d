"""Render report pages in headless Chromium, offline: the rendered DOM, a screenshot, and proof that
the page asked for nothing over the network.

    rendered = render("report.html", screenshot="report.png")
    assert "lvrat" in rendered.text and rendered.page_requests == []

Chromium runs with DNS mapped to nowhere (`--host-resolver-rules="MAP * ~NOTFOUND"`) and writes a
net log; `page_requests` lists the http(s)/ws URLs the page itself started (Chromium's own
background requests are told apart by their network isolation key, which is not the file:// page).

Screenshots for the docs:  .venv/bin/python -m tests.browser --out docs a.html b.html
(docs/<file stem>.png each; `name=path.html` picks the PNG's name).
"""

from __future__ import annotations

import argparse
import dataclasses
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

INSTALL_HINT = "run `make browser`"
WINDOW_SIZE = (1200, 1600)
# Big enough for a cold start on a loaded 2-core machine; a page here renders in about 2 s.
TIMEOUT_S = 120
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
# Documentation PNGs above this are re-encoded with a 256-colour palette: the reports' flat colours
# survive it, and a 1200x1600 page drops from 150-280 KB to about a third of that.
MAX_PNG_BYTES = 100_000


class BrowserMissing(RuntimeError):
    pass


def chromium_path() -> str | None:
    for candidate in CANDIDATES:
        found = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    return None


# --------------------------------------------------------------------------------------------------
# Static check: what the HTML itself would fetch

_REMOTE = r"(?:https?:|wss?:|ftp:)?//"
_PATTERNS = (
    re.compile(rf"""\b(?:src|href|xlink:href|action|poster|data|srcset)\s*=\s*["']?\s*({_REMOTE}[^"'\s>]*)""", re.I),
    re.compile(rf"""url\(\s*["']?\s*({_REMOTE}[^"')\s]*)""", re.I),
    re.compile(rf"""@import\s+["']({_REMOTE}[^"']*)""", re.I),
)
_ACTIVE_TAGS = re.compile(
    r"<\s*(script|iframe|object|embed|link\b[^>]*\brel\s*=\s*[\"']?(?:stylesheet|preload|prefetch|icon))", re.I
)


def external_references(page: str) -> list[str]:
    """Remote URLs the markup would load (src/href/url()/@import), and any script/iframe/object/
    embed/stylesheet link tag (the reports are static: none is allowed, local or not)."""
    found = [m.group(1) for pattern in _PATTERNS for m in pattern.finditer(page)]
    found += [f"<{m.group(1).split()[0]}> tag" for m in _ACTIVE_TAGS.finditer(page)]
    return found


# --------------------------------------------------------------------------------------------------
# Rendering


@dataclasses.dataclass
class Rendered:
    dom: str  # the DOM after rendering, serialized
    page_requests: list[str]  # network URLs the page started (should be empty)
    screenshot: str | None

    @property
    def text(self) -> str:
        """The rendered text content (SVG labels included), whitespace collapsed."""
        return dom_text(self.dom)


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "title"):
            self._skip += 1
        elif tag in ("td", "th", "p", "div", "li", "h1", "h2", "h3", "br", "tr", "text"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def dom_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def page_requests(netlog_path: str) -> list[str]:
    """URLs of network requests a file:// page started, from a Chromium net log (JSON)."""
    with open(netlog_path, encoding="utf-8") as f:
        raw = f.read()
    try:
        log = json.loads(raw)
    except json.JSONDecodeError:  # Chromium killed before it closed the log: close it here
        log = json.loads(raw.rstrip().rstrip(",") + "]}")
    types = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    urls = []
    for event in log.get("events", []):
        params = event.get("params") or {}
        url = params.get("url", "")
        if types.get(event.get("type")) != "URL_REQUEST_START_JOB" or not url:
            continue
        if url.split(":", 1)[0] in ("file", "data", "about", "blob", "chrome"):
            continue
        # the page's own requests are keyed by its file:// site; Chromium's background ones are not
        if str(params.get("network_isolation_key", "")).startswith("file://") or params.get("initiator") == "null":
            urls.append(url)
    return sorted(set(urls))


def render(html_path: str | os.PathLike, screenshot: str | os.PathLike | None = None,
           window_size: tuple[int, int] = WINDOW_SIZE, timeout: int = TIMEOUT_S) -> Rendered:
    """Load a local HTML file in headless Chromium: its DOM, its network requests, a screenshot."""
    browser = chromium_path()
    if browser is None:
        raise BrowserMissing(f"chromium not found ({', '.join(CANDIDATES)}): {INSTALL_HINT}")
    url = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        netlog = os.path.join(profile, "netlog.json")
        command = [browser, *FLAGS, f"--user-data-dir={os.path.join(profile, 'user-data')}",
                   f"--log-net-log={netlog}", f"--window-size={window_size[0]},{window_size[1]}", "--dump-dom"]
        if screenshot:
            command.append(f"--screenshot={Path(screenshot).resolve()}")
        done = subprocess.run(command + [url], capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0 or "<html" not in done.stdout.lower():
            raise RuntimeError(f"chromium failed on {url} (exit {done.returncode}): {done.stderr[-2000:]}")
        requests = page_requests(netlog) if os.path.exists(netlog) else ["<no net log written>"]
    if screenshot and not os.path.exists(screenshot):
        raise RuntimeError(f"chromium wrote no screenshot {screenshot}")
    return Rendered(dom=done.stdout, page_requests=requests, screenshot=str(screenshot) if screenshot else None)


def shrink_png(path: str | os.PathLike, max_bytes: int = MAX_PNG_BYTES) -> int:
    """Re-encode a PNG with a 256-colour palette when it is over max_bytes; its final size."""
    if os.path.getsize(path) > max_bytes:
        from PIL import Image

        with Image.open(path) as image:
            image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return os.path.getsize(path)


# --------------------------------------------------------------------------------------------------
# Markdown outputs, rendered the way a KFP Markdown artifact is read: as HTML


def markdown_page(markdown_text: str, title: str) -> str:
    """A Markdown report (GitHub-style tables) as a self-contained page in the reports' style."""
    import markdown

    from components.common import html_report as hr

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])
    return hr.page(title, [body])


def screenshots(pages: list[str], out_dir: str, window_size: tuple[int, int] = WINDOW_SIZE) -> list[tuple[str, int]]:
    """Screenshot each HTML file (`path` or `name=path`) to <out_dir>/<name>.png; fails on a page
    that references or requests anything remote. Returns (png, bytes) per page."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for spec in pages:
        name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
        name = name or Path(path).stem
        page = Path(path).read_text(encoding="utf-8")
        remote = external_references(page)
        if remote:
            raise ValueError(f"{path} is not self-contained: {remote[:5]}")
        png = os.path.join(out_dir, f"{name}.png")
        rendered = render(path, screenshot=png, window_size=window_size)
        if rendered.page_requests:
            raise ValueError(f"{path} made network requests: {rendered.page_requests[:5]}")
        written.append((png, shrink_png(png)))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", help="HTML files (or name=file.html)")
    parser.add_argument("--out", default="docs", help="directory for the PNGs (default: docs)")
    parser.add_argument("--size", default=f"{WINDOW_SIZE[0]}x{WINDOW_SIZE[1]}", help="window WxH")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    try:
        for png, size in screenshots(args.pages, args.out, (width, height)):
            print(f"{png}: {size / 1000:.0f} KB")
    except (BrowserMissing, ValueError) as exc:  # no browser; a page that is not self-contained
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
