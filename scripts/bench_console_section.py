"""Writes the console's section of docs/BENCHMARKS.md from the JSON that
scripts/console-bench.js prints (scripts/bench's console phase).

    python3 scripts/bench_console_section.py RESULT.json BENCHMARKS.md DATE COMMIT CPU BUILD DELIVERIES

The section replaces its earlier version wherever it is; a page without one
gets it just before the hand-written notes (or at the end).
"""

import json
import re
import sys

HEADING = "## 8. The console"
NOTES_MARKER = "<!-- Everything below this line is written by hand and kept by scripts/bench. -->"


def kb(n):
    return f"{n / 1024:.1f} KiB"


def section(result, date, commit, cpu, build, deliveries):
    signin = result["signin_page"]
    page = result["endpoint_page"]
    cold = result["endpoint_cold"]
    log = result["delivery_log"]
    rows = [
        ("Sign-in page, cold (empty cache)", kb(signin["bytes"]), signin["requests"],
         f'{signin["interactive_ms"]} ms to a usable sign-in field (DOM interactive {signin["dom_interactive_ms"]} ms)'),
        ("Signing in: the endpoint list", kb(page["sign_in"]["bytes"]), page["sign_in"]["requests"], "–"),
        ("An endpoint's page, from the list", kb(page["bytes"]), page["requests"],
         f'{page["endpoint_shown_ms"]} ms to its header, {page["delivery_log_rendered_ms"]} ms to its delivery log ({page["log_rows"]} rows)'),
        ("An endpoint's page, cold load with the key in the tab", kb(cold["bytes"]), cold["requests"],
         f'{cold["endpoint_shown_ms"]} ms to its header, {cold["delivery_log_rendered_ms"]} ms to its delivery log'),
    ]
    runs = ", ".join(str(r) for r in log["runs_ms"])
    lines = [
        HEADING,
        "",
        f"Headless Chromium on loopback against the {build} API (scripts/console-bench.js), "
        f"{date}, commit {commit}, {cpu}. The endpoint's log holds "
        f"{int(deliveries):,} deliveries (published in batches to a paused endpoint, so "
        "they stay queued and nothing else runs while the browser measures). Bytes are "
        "as transferred (headers and bodies, uncompressed: the console is about a dozen "
        "small files).",
        "",
        "| view | bytes | requests | time |",
        "| --- | --- | --- | --- |",
    ]
    for name, size, requests, time in rows:
        lines.append(f"| {name} | {size} | {requests} | {time} |")
    lines += [
        "",
        f"Opening the endpoint's page again (warm, {len(log['runs_ms'])} times): the first page of "
        f"its delivery log rendered in a median of **{log['median_ms']} ms** ({runs} ms). "
        "The log is read a page at a time (the API's cursor), so its length does not "
        "change what a page costs.",
        "",
    ]
    return "\n".join(lines)


def main():
    result_path, out_path, date, commit, cpu, build, deliveries = sys.argv[1:8]
    with open(result_path) as f:
        result = json.load(f)
    text = section(result, date, commit, cpu, build, deliveries)
    with open(out_path) as f:
        page = f.read()
    existing = re.compile(r"^## 8\. The console\n.*?(?=^## |^<!-- Everything below|\Z)", re.S | re.M)
    later = re.compile(r"^## (9|10)\. ", re.M).search(page)
    if existing.search(page):
        page = existing.sub(lambda _: text + "\n", page, count=1)
    elif later:
        # Before the sections numbered after it.
        page = page[: later.start()] + text + "\n\n" + page[later.start():]
    elif NOTES_MARKER in page:
        head, notes = page.split(NOTES_MARKER, 1)
        page = head.rstrip("\n") + "\n\n" + text + "\n" + NOTES_MARKER + notes
    else:
        page = page.rstrip("\n") + "\n\n" + text
    with open(out_path, "w") as f:
        f.write(page)


if __name__ == "__main__":
    main()
