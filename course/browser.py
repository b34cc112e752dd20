"""The course site in a real browser, with the network off: ``scripts/check_site.sh [OUT]``.

Every page of the site is loaded by headless Chromium (the Debian package ``chromium``) with a
proxy that goes nowhere and a host resolver that resolves nothing, so no request can leave the
machine, and Chromium's network log records every request it tried. For each page the check
asserts that

* the network log holds no http(s) request of the page: everything came from the site's own
  files (the requests that Chromium makes on its own, to its update and account services, are
  those it also makes for ``about:blank``, and are left out; they fail too, with the network off);
* MathJax typeset the maths: the page has rendered math elements (``class="MathJax"`` or
  ``MathJax_Display``), and its prose (scripts and code left out: MathJax keeps the TeX source
  in ``<script type="math/tex">``) holds no raw ``$...$`` formula;

and saves a screenshot of the first notebook page as ``OUT/screenshot.png``.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OFFLINE = ["--headless=new", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=20000",
           # the browser's own traffic (updates, accounts, spelling dictionaries): off, so that the
           # network log holds only what the pages ask for
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
           "--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
           "--disable-features=Translate,OptimizationHints,MediaRouter,SpellcheckService,AccountConsistency"]
RENDERED = re.compile(r'class="(?:MathJax|MathJax_Display)"')
RAW_FORMULA = re.compile(r"(?<![\w$\\])\$[^$\s][^$\n]{0,200}?\$(?![\w$])")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    return found


def visible_text(dom: str) -> str:
    """The page's prose: its text without scripts, styles, code (``<pre>``: a ``$`` in code is not
    maths, and MathJax leaves code alone) and tags."""
    dom = re.sub(r"<(script|style|pre)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return re.sub(r"<[^>]+>", " ", dom)


def requests_in(net_log: Path) -> list[str]:
    """The http(s) URLs that Chromium's network log shows a request for."""
    text = net_log.read_text(errors="replace") if net_log.exists() else ""
    return sorted(set(re.findall(r'"url"\s*:\s*"(https?://[^"]+)"', text)))


def _host(url: str) -> str:
    return url.split("/")[2]


def load(uri: str, screenshot: Path | None = None) -> tuple[str, list[str]]:
    """(the DOM after scripts ran, the http(s) requests tried) for ``uri`` loaded offline."""
    with tempfile.TemporaryDirectory() as tmp:
        net_log = Path(tmp) / "net.json"
        flags = [chromium(), *OFFLINE, f"--user-data-dir={tmp}/profile", f"--log-net-log={net_log}"]
        dom = subprocess.run([*flags, "--dump-dom", uri], capture_output=True, text=True, timeout=180).stdout
        if screenshot is not None:
            subprocess.run([*flags, "--window-size=1280,1600", f"--screenshot={screenshot}", uri],
                           capture_output=True, timeout=180)
        return dom, requests_in(net_log)


def check_page(page: Path, browser_hosts: set, screenshot: Path | None = None) -> dict:
    """{'requests': [...], 'rendered': n, 'raw': [...]} for one page loaded offline; ``browser_hosts``:
    the hosts Chromium calls on its own (update and account services, seen on a blank page)."""
    dom, requests = load(page.as_uri(), screenshot)
    return {"requests": [url for url in requests if _host(url) not in browser_hosts],
            "rendered": len(RENDERED.findall(dom)), "raw": RAW_FORMULA.findall(visible_text(dom))[:3]}


def main(argv=None) -> int:
    out = Path((argv or sys.argv[1:] or ["site/course"])[0])
    pages = sorted(out.glob("*.html"))
    if not pages:
        print(f"error: no pages in {out}: build them with python -m course site {out}", file=sys.stderr)
        return 2
    browser_hosts = {_host(url) for url in load("about:blank")[1]}
    failures = 0
    notebooks = [page for page in pages if page.name[:2].isdigit()]
    for page in pages:
        shot = out / "screenshot.png" if notebooks and page == notebooks[0] else None
        found = check_page(page, browser_hosts, shot)
        math_expected = page.name != "index.html"
        ok = not found["requests"] and not found["raw"] and (found["rendered"] > 0 or not math_expected)
        failures += not ok
        print(json.dumps({"page": page.name, "ok": ok, **found}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
