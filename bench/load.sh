#!/usr/bin/env bash
# Load comparison: one Caddy serves two sites in front of the same upstream,
# "plain" (reverse_proxy only) and "guarded" (implicit_grant + reverse_proxy,
# with a logged-in session cookie). wrk runs against each in turn,
# interleaved, ROUNDS times; for every run we read Caddy's own CPU time
# (utime+stime from /proc/<pid>/stat) and report CPU per request and
# requests/s, then the guarded/plain ratios.
#
#   bench/load.sh [seconds per run, default 10] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-3}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/login" ./bench/login

cat > "$work/upstream" <<'CF'
{
	admin off
	auto_https off
}
http://127.0.0.1:9301 {
	respond "upstream ok" 200
}
CF
cat > "$work/proxy" <<'CF'
{
	admin off
	auto_https off
}
http://localhost:9302 {
	reverse_proxy 127.0.0.1:9301
}
http://localhost:9303 {
	implicit_grant {
		authorize_url http://127.0.0.1:9304/authorize
		client_id     bench
		redirect_uri  http://localhost:9303/oauth/callback
		secret        bench-secret-bench-secret-bench-secret
		validate      introspect http://127.0.0.1:9304/introspect
	}
	reverse_proxy 127.0.0.1:9301
}
http://127.0.0.1:9304 {
	implicit_grant_dev_provider {
		client bench http://localhost:9303/oauth/callback
	}
}
CF
XDG_DATA_HOME=$work "$work/caddy" run --config "$work/upstream" --adapter caddyfile >"$work/upstream.log" 2>&1 &
XDG_DATA_HOME=$work "$work/caddy" run --config "$work/proxy" --adapter caddyfile >"$work/proxy.log" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9301/ && curl -s -o /dev/null http://localhost:9302/ && break; sleep 0.1; done
cookie=$("$work/login" http://localhost:9303)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$proxy_pid/stat"; }
hz=$(getconf CLK_TCK)
declare -A cpu reqs
run() { # name url
	local before after out n
	before=$(cpu_ticks)
	out=$(wrk -t2 -c32 -d"${DURATION}s" -H "Cookie: theme=dark; __Host-implicit_grant=$cookie" -H "Accept: application/json" "$2")
	after=$(cpu_ticks)
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	grep -q "Non-2xx" <<<"$out" && { echo "$1: non-2xx responses:"; echo "$out"; exit 1; }
	cpu[$1]=$(( ${cpu[$1]:-0} + after - before ))
	reqs[$1]=$(( ${reqs[$1]:-0} + n ))
	printf '%-8s round %d: %8d requests, %7.0f req/s, %6.2f µs CPU/request\n' "$1" "$r" "$n" "$(bc -l <<<"$n/$DURATION")" "$(bc -l <<<"($after-$before)/$hz*1000000/$n")"
}
for r in $(seq "$ROUNDS"); do
	run plain http://localhost:9302/
	run guarded http://localhost:9303/
done
p=$(bc -l <<<"${cpu[plain]}/$hz*1000000/${reqs[plain]}")
g=$(bc -l <<<"${cpu[guarded]}/$hz*1000000/${reqs[guarded]}")
printf '\ntotal    plain: %.2f µs CPU/request, %.0f req/s\n' "$p" "$(bc -l <<<"${reqs[plain]}/($DURATION*$ROUNDS)")"
printf 'total  guarded: %.2f µs CPU/request, %.0f req/s\n' "$g" "$(bc -l <<<"${reqs[guarded]}/($DURATION*$ROUNDS)")"
printf 'ratio guarded/plain: CPU per request %.3f, requests/s %.3f\n' "$(bc -l <<<"$g/$p")" "$(bc -l <<<"${reqs[guarded]}/${reqs[plain]}")"
