#!/usr/bin/env bash
# The course site in headless Chromium with the network off (course/browser.py): no request leaves
# the machine, the maths is typeset on every page, and OUT/screenshot.png shows the first notebook.
#   bash scripts/check_site.sh [OUT]     (default site/course; built first when it has no pages)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-site/course}"
if ! ls "$out"/*.html >/dev/null 2>&1; then
  python3 -m course site "$out"
fi
python3 -m course.browser "$out"
