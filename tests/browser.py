"""A small headless-Chromium driver over the DevTools protocol (websocket-client), for the board page test."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-dev-shm-usage", "--remote-debugging-port=0")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


class Chromium:
    """``with Chromium() as b: b.open(url); b.eval(js)``; ``b.errors`` collects console errors and exceptions."""

    def __init__(self, timeout: float = 30.0):
        self.timeout, self.errors, self._id = timeout, [], 0

    def __enter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)  # its helpers may still write
        self.proc = subprocess.Popen([find_chromium(), *FLAGS, f"--user-data-dir={self._profile.name}",
                                      "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + self.timeout
        port = None
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode} before listening")
            if m := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                port = int(m.group(1))
        if port is None:
            raise RuntimeError("chromium did not open its DevTools port in time")
        pages = []
        while not pages and time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=self.timeout,
                                              suppress_origin=True)
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.close()
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        self._profile.cleanup()

    def _event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("exception", {}).get("description")
                               or params["exceptionDetails"].get("text"))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(params["entry"].get("text"))

    def call(self, method: str, wait_for: str | None = None, **params: object) -> dict:
        """Send a command; return its result (after the event ``wait_for``, when given)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        result, seen = None, wait_for is None
        while result is None or not seen:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result = msg.get("result", {})
            elif "method" in msg:
                self._event(msg)
                seen = seen or msg["method"] == wait_for
        return result

    def open(self, url: str) -> None:
        self.call("Page.navigate", wait_for="Page.loadEventFired", url=url)

    def resize(self, width: int, height: int = 900) -> None:
        """Lay the page out for a window ``width`` x ``height`` CSS pixels wide (a desktop, not a phone)."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def screenshot(self, path: str, full: bool = False) -> None:
        """A PNG of the viewport (``full``: of the whole page) at ``path``."""
        import base64

        out = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full)
        with open(path, "wb") as f:
            f.write(base64.b64decode(out["data"]))

    def eval(self, expression: str) -> object:
        out = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")
