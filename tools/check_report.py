"""Open a comparison's report page in headless Chromium, screenshot it, fail on console errors.

    python tools/check_report.py runs/compare/report.html --screenshot docs/report.png

Checks, exit status 1 on any failure:
- every ``src``/``href`` of the page is inlined (``data:``), an in-page anchor, or a file beside it
  that exists: the page loads nothing from the network;
- Chromium (``chromium``, ``chromium-browser`` or ``google-chrome`` on the PATH; install it with
  ``apt-get install -y chromium``) renders it headless with its console logged to stderr, and no
  console line reports an error ("Uncaught", or a console message at error level);
- the screenshot was written.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
_LINK = re.compile(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_CONSOLE_ERROR = re.compile(r"Uncaught|:ERROR:CONSOLE|CONSOLE\(\d+\)\].*(?:Error|error)")


def external_links(page: Path) -> list[str]:
    """The page's ``src``/``href`` targets that are neither inlined, in-page, nor an existing file beside it."""
    bad = []
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("data:", "#")):
            continue
        if "://" in target or target.startswith("//") or not (page.parent / target).is_file():
            bad.append(target)
    return bad


def render(page: Path, screenshot: Path, width: int, height: int, browser: str) -> list[str]:
    """Screenshot ``page`` with ``browser`` headless; returns the console error lines of its log."""
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
            "--enable-logging=stderr", "--v=0", f"--window-size={width},{height}",
            f"--screenshot={screenshot.resolve()}", page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    log = done.stdout + done.stderr
    errors = [line for line in log.splitlines() if _CONSOLE_ERROR.search(line)]
    if done.returncode != 0:
        errors.append(f"{browser} exited with status {done.returncode}: {log[-500:]}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", type=Path, help="the report.html to check")
    parser.add_argument("--screenshot", type=Path, help="where to save the PNG (default: beside the page)")
    parser.add_argument("--window-size", default="1200,2000", help="WIDTH,HEIGHT in pixels (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"no page at {args.page}: run `stsampler compare` or `stsampler report` first", file=sys.stderr)
        return 1
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        print(f"none of {', '.join(BROWSERS)} is installed: apt-get install -y chromium", file=sys.stderr)
        return 1
    width, height = (int(v) for v in args.window_size.split(","))
    screenshot = args.screenshot or args.page.with_suffix(".png")
    problems = [f"not self-contained: {link}" for link in external_links(args.page)]
    problems += render(args.page, screenshot, width, height, browser)
    if not screenshot.is_file():
        problems.append(f"no screenshot was written to {screenshot}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"ok: {args.page} renders without console errors; screenshot {screenshot}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
