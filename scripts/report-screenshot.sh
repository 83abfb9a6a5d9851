#!/usr/bin/env bash
# Renders a report page with headless Chromium to a PNG, to look at it the way a reader does.
# Usage: scripts/report-screenshot.sh reports/<sweep>/index.html [out.png] [height]
# Needs Chromium (Debian: apt-get install chromium).
set -euo pipefail
page=${1:?usage: $0 INDEX.html [OUT.png] [HEIGHT]}
out=${2:-${page%.html}.png}
height=${3:-6000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium found: apt-get install chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1100,"$height" \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$page")" >/dev/null 2>&1
[ -s "$out" ] || { echo "no screenshot written" >&2; exit 1; }
echo "$out"
