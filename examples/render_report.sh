#!/usr/bin/env bash
# Render a scalebayes report in headless Chromium and save a screenshot, to check the page by eye.
#
#   scalebayes report fit.nc --out report/
#   examples/render_report.sh report/report.html report/screenshot.png [WIDTH,HEIGHT]
#
# Needs Debian's chromium (as root: apt-get update && apt-get install -y chromium). The page is
# self-contained, so Chromium runs with networking, sync and updates off.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 REPORT.html [SCREENSHOT.png] [WIDTH,HEIGHT]" >&2
    exit 2
fi
page=$(realpath "$1")
shot=$(realpath -m "${2:-${1%.html}.png}")
size=${3:-1200,6000}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "$0: chromium not found (apt-get install -y chromium)" >&2
    exit 3
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size="$size" \
    --screenshot="$shot" "file://$page" 2>/dev/null
echo "screenshot: $shot"
