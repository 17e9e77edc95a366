#!/usr/bin/env python3
"""Loads /docs in a real headless Chromium and checks that Swagger UI renders every operation
of /openapi.json, fetching nothing but this service's own files.

    python3 tests/browser/check_docs.py [--binary PATH] [--screenshot FILE.png]

Starts the service (built from the current sources with `cargo build`, unless --binary is
given) on 127.0.0.1 with a fresh temporary database, loads /docs with Chromium's --dump-dom
after the page settles, and checks the rendered page has one operation block per documented
operation. Chromium's network log must show requests to the service's origin only.

Prints SKIP and exits 0 when no Chromium is installed (Debian: apt-get install -y chromium).
Exits 1 on a failed check. Uses only the Python standard library.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")


def find_browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def find_binary(explicit):
    if explicit:
        return Path(explicit)
    # Build from the current sources (quick after `cargo test`): a binary left in target/ may
    # be older than them.
    subprocess.run(["cargo", "build", "--locked", "--quiet"], cwd=REPO, check=True)
    return REPO / "target" / "debug" / "webhook-processor"


def start_service(binary, workdir):
    """Starts the service on a free port; returns the process and its base URL."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "WEBHOOK_SECRET": "browser-check",
        "DATABASE_URL": f"sqlite:///{workdir}/data/app.db",
        "HOST": "127.0.0.1",
        "PORT": "0",
        "WORKERS": "1",
        "READERS": "1",
    }
    service = subprocess.Popen(
        [str(binary), "serve"], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for line in service.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("message") == "listening":
            return service, f"http://127.0.0.1:{event['port']}"
    service.wait(timeout=10)
    raise SystemExit(f"FAIL: the service did not start: {service.stderr.read().strip()}")


def stop_service(service):
    if service.poll() is None:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


def chromium_command(browser, profile, netlog):
    command = [
        browser, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--no-default-browser-check", "--no-proxy-server",
        # Any name other than the service's address fails to resolve: nothing can leave.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}", f"--log-net-log={netlog}",
        # Console messages (a refused load names the Content-Security-Policy) go to stderr.
        "--enable-logging=stderr", "--log-level=0",
        "--window-size=1280,2400", "--virtual-time-budget=15000",
    ]
    if os.geteuid() == 0:
        command.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox.
    return command


class OperationBlocks(HTMLParser):
    """Collects the ids of Swagger UI's operation blocks and the paths they show."""

    def __init__(self):
        super().__init__()
        self.ids = set()
        self.paths = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if "opblock" in classes and attrs.get("id", "").startswith("operations-"):
            self.ids.add(attrs["id"])
        if "opblock-summary-path" in classes and attrs.get("data-path"):
            self.paths.add(attrs["data-path"])


def expected_operations(document):
    """(method, path, the DOM id Swagger UI gives the block) for every operation."""
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation:
                tag = (operation.get("tags") or ["default"])[0]
                yield method, path, f"operations-{tag}-{operation['operationId']}"


def requested_urls(netlog):
    """The URLs the page asked for, and those Chromium fetched for itself (update checks,
    network time, ...: they fail here, since only 127.0.0.1 resolves)."""
    try:
        log = json.loads(Path(netlog).read_text())
    except ValueError:
        # Chromium may leave the log without its closing brackets when it exits.
        text = Path(netlog).read_text().rstrip().rstrip(",")
        log = json.loads(text + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    page, browser = set(), set()
    for event in log.get("events", []):
        params = event.get("params") or {}
        if event.get("type") != start_job or "url" not in params:
            continue
        # A request made by the page is keyed to the page's site; the browser's own are not.
        made_by_page = params.get("network_isolation_key", "").startswith("http://127.0.0.1")
        (page if made_by_page else browser).add(params["url"])
    return page, browser


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", help="the webhook-processor binary to run")
    parser.add_argument("--screenshot", help="also save a PNG of the rendered page here")
    args = parser.parse_args()

    browser = find_browser()
    if browser is None:
        print("SKIP docs browser check: no Chromium found (apt-get install -y chromium)")
        return 0
    binary = find_binary(args.binary)

    with tempfile.TemporaryDirectory(prefix="docs-check-") as workdir:
        service, base = start_service(binary, workdir)
        try:
            with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
                document = json.load(response)
            netlog = f"{workdir}/netlog.json"
            command = chromium_command(browser, f"{workdir}/profile", netlog)
            dom = subprocess.run(
                command + ["--dump-dom", f"{base}/docs"],
                capture_output=True, text=True, timeout=120,
            )
            if dom.returncode != 0:
                print(f"FAIL: Chromium exited {dom.returncode}: {dom.stderr.strip()[-2000:]}")
                return 1
            if args.screenshot:
                subprocess.run(
                    chromium_command(browser, f"{workdir}/profile-shot", f"{workdir}/shot.json")
                    + [f"--screenshot={Path(args.screenshot).resolve()}", f"{base}/docs"],
                    capture_output=True, timeout=120, check=False,
                )
            page_urls, browser_urls = requested_urls(netlog)
        finally:
            stop_service(service)

    blocks = OperationBlocks()
    blocks.feed(dom.stdout)
    failures = []
    expected = list(expected_operations(document))
    for method, path, block_id in expected:
        if block_id not in blocks.ids:
            failures.append(f"{method.upper()} {path}: no rendered block #{block_id}")
        if path not in blocks.paths:
            failures.append(f"{method.upper()} {path}: the path is not shown")
    if "WebhookProcessor" not in dom.stdout:
        failures.append("the document's title is not shown")
    foreign = sorted(u for u in page_urls if not u.startswith(base + "/"))
    if foreign:
        failures.append(f"the page requested URLs outside {base}: {foreign}")
    if f"{base}/openapi.json" not in page_urls:
        failures.append(f"the page never fetched /openapi.json (it fetched {sorted(page_urls)})")
    refused = [line for line in dom.stderr.splitlines()
               if "Content Security Policy" in line or "Refused to" in line]
    if refused:
        failures.append(f"the browser refused loads: {refused}")

    if failures:
        print("FAIL: /docs in headless Chromium:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print(f"PASS: /docs in headless Chromium rendered all {len(expected)} operations:")
    for method, path, _ in expected:
        print(f"  {method.upper():6} {path}")
    print(f"  the page fetched {len(page_urls)} URLs, all on {base}:")
    for url in sorted(page_urls):
        print(f"    {url[len(base):]}")
    print(f"  (Chromium's own background requests, unresolvable here: {len(browser_urls)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
