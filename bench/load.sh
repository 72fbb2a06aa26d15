#!/usr/bin/env bash
# Load comparison: one Caddy serves three sites in front of the same
# upstream: "plain" (reverse_proxy only), "plain2" (the same again: an A/A
# control that shows the method's own noise) and "guarded" (implicit_grant
# + reverse_proxy with header_up X-Forwarded-User {http.auth.user.id}, a
# logged-in session cookie: the token injected, the user's placeholders set
# and used). No site logs. Each round runs wrk against every site, in an
# order that rotates from round to round (the first run of a round is
# systematically slower), each run after a short unmeasured warm-up; for
# every run we read Caddy's own CPU time (utime+stime from
# /proc/<pid>/stat) and report CPU per request and requests/s, then the
# median over rounds of each round's guarded/plain and plain2/plain ratios.
#
#   bench/load.sh [seconds per run, default 5] [rounds, default 12]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-5}
ROUNDS=${2:-12}
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
http://localhost:9305 {
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
	reverse_proxy 127.0.0.1:9301 {
		header_up X-Forwarded-User {http.auth.user.id}
	}
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
upstream_pid=$(pgrep -f "$work/caddy run --config $work/upstream" | head -1)
# On a machine with two or more cores, the proxy gets a core of its own and
# the upstream and wrk share another: the proxy's CPU time per request then
# moves less with what else runs.
pin=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	sleep 0.5
	taskset -a -cp 0 "$proxy_pid" >/dev/null
	[ -n "$upstream_pid" ] && taskset -a -cp 1 "$upstream_pid" >/dev/null
	pin="taskset -c 1"
fi
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9301/ && curl -s -o /dev/null http://localhost:9302/ && break; sleep 0.1; done
cookie=$("$work/login" http://localhost:9303)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$proxy_pid/stat"; }
hz=$(getconf CLK_TCK)
declare -A url=([plain]=http://localhost:9302/ [plain2]=http://localhost:9305/ [guarded]=http://localhost:9303/)
declare -A cpu reqs
load() { # url seconds -> wrk output
	$pin wrk -t1 -c16 -d"$2s" -H "Cookie: theme=dark; implicit_grant=$cookie" -H "Accept: application/json" "$1"
}
run() { # name -> sets last_us (µs CPU per request)
	local before after out n
	load "${url[$1]}" 2 >/dev/null # warm-up, not measured
	before=$(cpu_ticks)
	out=$(load "${url[$1]}" "$DURATION")
	after=$(cpu_ticks)
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	grep -q "Non-2xx" <<<"$out" && { echo "$1: non-2xx responses:"; echo "$out"; exit 1; }
	cpu[$1]=$(( ${cpu[$1]:-0} + after - before ))
	reqs[$1]=$(( ${reqs[$1]:-0} + n ))
	last_us=$(bc -l <<<"($after-$before)/$hz*1000000/$n")
	printf '%-8s round %d: %8d requests, %7.0f req/s, %6.2f µs CPU/request\n' "$1" "$r" "$n" "$(bc -l <<<"$n/$DURATION")" "$last_us"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
orders=("plain plain2 guarded" "guarded plain plain2" "plain2 guarded plain")
ratios_g=() ratios_a=()
for r in $(seq "$ROUNDS"); do
	declare -A us=()
	for name in ${orders[$(( (r-1) % 3 ))]}; do
		run "$name"
		us[$name]=$last_us
	done
	ratios_g+=("$(bc -l <<<"${us[guarded]}/${us[plain]}")")
	ratios_a+=("$(bc -l <<<"${us[plain2]}/${us[plain]}")")
done
for name in plain plain2 guarded; do
	printf '\ntotal %8s: %.2f µs CPU/request, %.0f req/s' "$name" "$(bc -l <<<"${cpu[$name]}/$hz*1000000/${reqs[$name]}")" "$(bc -l <<<"${reqs[$name]}/($DURATION*$ROUNDS)")"
done
printf '\n\nmedian of per-round CPU-per-request ratios over %d rounds:\n' "$ROUNDS"
printf '  guarded/plain %.3f\n' "$(printf '%s\n' "${ratios_g[@]}" | median)"
printf '  plain2/plain  %.3f   (A/A control: the method'"'"'s noise)\n' "$(printf '%s\n' "${ratios_a[@]}" | median)"
