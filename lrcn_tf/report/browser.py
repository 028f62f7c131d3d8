"""Looks at a page as a reader would: headless Chromium, over the DevTools protocol on a pipe.

    result = check_page("results/index.html", screenshot="docs/report.png")
    result.broken_images, result.console_errors, result.requests   # all empty when it is right

No browser driver package is needed: Chromium is started with `--remote-debugging-pipe` and
spoken to in JSON messages on file descriptors 3 and 4. The page is loaded from disk; every
<img> must have decoded (naturalWidth > 0), nothing may be logged as an error, and the page
may fetch nothing beyond itself (a self-contained report asks for no network).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or did not answer in time."""


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, or $CHROMIUM; None if there is none."""
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env)
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


@dataclasses.dataclass
class PageCheck:
    images: int  # <img> elements on the page
    broken_images: list[str]  # their alt texts (or sources) where naturalWidth is 0
    console_errors: list[str]
    requests: list[str]  # URLs the page fetched that are not data: or the page itself
    height: int  # the page's height in CSS pixels

    @property
    def ok(self) -> bool:
        return not (self.broken_images or self.console_errors or self.requests) and self.images > 0


class _Pipe:
    """A Chromium process and its DevTools pipe: send commands, wait for replies and events."""

    def __init__(self, exe: str, timeout: float):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="lrcn-chromium-")
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        # The child must find the pipe on fds 3 (its input) and 4 (its output).
        hi_in, hi_out = os.dup(to_child), os.dup(from_child)

        def wire():
            os.dup2(hi_in, 3)
            os.dup2(hi_out, 4)

        cmd = [
            exe,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--disable-extensions",
            "--disable-background-networking",
            "--mute-audio",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        try:
            self.proc = subprocess.Popen(
                cmd,
                pass_fds=(3, 4, hi_in, hi_out),
                preexec_fn=wire,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            for fd in (to_child, from_child, hi_in, hi_out):
                os.close(fd)
        self._buf = b""
        self._next = 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise BrowserError(f"chromium did not answer within {self.timeout:.0f} s")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed its DevTools pipe (did it start?)")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + self.timeout
        while True:
            e = self._read(deadline)
            if e.get("method") == method:
                return e
            self.events.append(e)

    def close(self) -> None:
        try:
            os.write(self._w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


_IMAGES = """JSON.stringify({
  images: Array.from(document.images).map(i => [i.naturalWidth, i.alt || i.src.slice(0, 60)]),
  height: document.documentElement.scrollHeight})"""


def check_page(
    path: str | Path,
    screenshot: str | Path | None = None,
    width: int = 1200,
    shot_height: int = 1600,
    timeout: float = 60.0,
) -> PageCheck:
    """Loads `path` from disk in headless Chromium and checks it as described above.

    Args:
      path: the HTML file.
      screenshot: where to save a PNG of the top `shot_height` pixels (None: no screenshot).
      width: the window's width in CSS pixels.
      shot_height: the screenshot's height.
      timeout: seconds to wait for each answer of the browser.

    Raises:
      BrowserError: no Chromium on PATH, or it did not start or answer.
    """
    exe = find_chromium()
    if exe is None:
        raise BrowserError(
            f"no Chromium on PATH (looked for {', '.join(BROWSERS)}; or set $CHROMIUM)"
        )
    url = Path(path).resolve().as_uri()
    pipe = _Pipe(exe, timeout)
    try:
        target = pipe.send("Target.createTarget", url="about:blank")["targetId"]
        session = pipe.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", session)
        pipe.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=shot_height,
            deviceScaleFactor=1,
            mobile=False,
        )
        pipe.send("Page.navigate", session, url=url)
        pipe.wait_for("Page.loadEventFired")
        found = json.loads(
            pipe.send("Runtime.evaluate", session, expression=_IMAGES, returnByValue=True)[
                "result"
            ]["value"]
        )
        if screenshot is not None:
            shot = pipe.send("Page.captureScreenshot", session, format="png")
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        pipe.send("Runtime.evaluate", session, expression="0")  # drain queued events
    finally:
        pipe.close()
    errors, requests = [], []
    for e in pipe.events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            )
        elif m == "Runtime.exceptionThrown":
            errors.append(p["exceptionDetails"].get("text", "exception"))
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            errors.append(p["entry"].get("text", ""))
        elif m == "Network.requestWillBeSent":
            req = p["request"]["url"]
            if not req.startswith("data:") and req != url:
                requests.append(req)
    return PageCheck(
        images=len(found["images"]),
        broken_images=[alt for w, alt in found["images"] if not w],
        console_errors=errors,
        requests=requests,
        height=int(found["height"]),
    )
