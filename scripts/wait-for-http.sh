#!/usr/bin/env bash
# Wait until an HTTP server answers, e.g. after starting `make run` in the background.
#
# Usage: scripts/wait-for-http.sh URL [TIMEOUT_SECONDS] [PID]
#   URL              what to request (GET); any HTTP status below 500 counts as "up", since a
#                    404 still proves the server is serving, while a 5xx means it is broken
#   TIMEOUT_SECONDS  give up after this long (default 60)
#   PID              optional: stop waiting at once if this process has exited (the server
#                    crashed on start-up, so further waiting would only burn the timeout)
#
# Uses Python's urllib rather than curl, because python3 is the one tool every machine that
# runs this project already has.
set -euo pipefail

url="${1:?usage: wait-for-http.sh URL [TIMEOUT_SECONDS] [PID]}"
timeout="${2:-60}"
pid="${3:-}"
python="${PYTHON:-python3}"
prog="scripts/wait-for-http.sh"

# Prints the status code, or nothing if the connection failed; exits 0 either way.
probe() {
    "$python" - "$url" <<'EOF'
import sys
import urllib.error
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as response:  # noqa: S310
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
except (OSError, ValueError):
    pass
EOF
}

deadline=$((SECONDS + timeout))
while :; do
    status="$(probe)"
    if [[ -n "$status" ]]; then
        if ((status < 500)); then
            echo "$prog: $url answered HTTP $status"
            exit 0
        fi
        echo "$prog: $url answered HTTP $status; still waiting" >&2
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
        echo "$prog: process $pid exited before $url answered" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "$prog: no answer from $url within ${timeout}s" >&2
        exit 1
    fi
    sleep 0.5
done
