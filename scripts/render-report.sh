#!/usr/bin/env bash
# Renders an HTML report with headless Chromium (Debian package `chromium`, installed by setup.sh):
# checks that the page loads with no console message (errors, failed loads, script exceptions) and that
# its script counted its charts, then writes a PNG screenshot.
#   scripts/render-report.sh runs/demo/report.html [out.png]
set -euo pipefail
html=${1:?usage: render-report.sh REPORT.html [OUT.png]}
png=${2:-${html%.html}.png}
CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" >/dev/null || { echo "render-report: $CHROMIUM not found (bash scripts/setup.sh installs it)" >&2; exit 1; }
[ -f "$html" ] || { echo "render-report: $html: no such file" >&2; exit 1; }
url="file://$(realpath "$html")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --user-data-dir="$tmp/profile")
"$CHROMIUM" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "$url" >"$tmp/dom.html" 2>"$tmp/log.txt" || {
    echo "render-report: chromium failed on $html" >&2; tail -5 "$tmp/log.txt" >&2; exit 1; }
if grep -q ":CONSOLE" "$tmp/log.txt"; then
    echo "render-report: console messages while loading $html:" >&2
    grep ":CONSOLE" "$tmp/log.txt" >&2
    exit 1
fi
charts=$(grep -o 'data-charts="[0-9]*"' "$tmp/dom.html" | grep -o '[0-9][0-9]*' || true)
[ -n "$charts" ] || { echo "render-report: the page's script did not run (no data-charts on <body>)" >&2; exit 1; }
"$CHROMIUM" "${flags[@]}" --window-size=1200,${HEIGHT:-5000} --screenshot="$png" "$url" >/dev/null 2>&1
[ -s "$png" ] || { echo "render-report: no screenshot written" >&2; exit 1; }
echo "render-report: $charts charts, no console messages; screenshot $png"
