#!/usr/bin/env bash
# One-run comparison of fcgiproxy and nginx in front of the same PHP-FPM (same pool, same
# script), one after the other, with wrk. Bounded: each load run lasts DURATION and stops itself.
#
#   Benchmarks/compare-nginx.sh [PATH] [DURATION] [CONNECTIONS]
#
# nginx runs with `fastcgi_keep_conn on` and an upstream `keepalive` pool, worker_processes
# auto; fcgiproxy with threads = auto. Both log nothing per request. Needs a release build
# (`swift build -c release`), wrk, nginx and php-fpm (scripts/ensure-packages.sh installs them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
path=${1:-/index.php}
duration=${2:-10s}
conns=${3:-64}
"$root/scripts/ensure-packages.sh" wrk nginx php-fpm >/dev/null
bin=${FCGIPROXY_BIN:-$(cd "$root" && swift build -c release --show-bin-path)/fcgiproxy}
[ -x "$bin" ] || { echo "build first: swift build -c release" >&2; exit 1; }

work=$(mktemp -d /tmp/fcgiproxy-bench.XXXXXX)
chmod 755 "$work"   # nginx workers run unprivileged and must reach the socket
cleanup() {
    [ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null || true
    [ -n "${nginx_pid:-}" ] && kill "$nginx_pid" 2>/dev/null || true
    "$root/scripts/php-fpm.sh" stop "$work/php" >/dev/null 2>&1 || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
# As many PHP workers as client connections: a keep-alive FastCGI connection holds a worker
# for its whole life, so fewer workers would starve connections (pool limits are issue 4).
FPM_CHILDREN=$conns "$root/scripts/php-fpm.sh" start "$work/php" >/dev/null
sock=$work/php/php.sock

cat > "$work/proxy.ini" <<INI
[server]
listen = 127.0.0.1:18481
access_log = off
log_level = warning
[pool:php]
backend = unix:$sock
max_conns = $conns
[route:php]
match = /
pool = php
root = $root/examples/php
INI

mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes auto;
error_log $work/nginx/error.log warn;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    fastcgi_temp_path $work/nginx/fastcgi;
    proxy_temp_path $work/nginx/proxy;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream php { server unix:$sock; keepalive 32; }
    server {
        listen 127.0.0.1:18482;
        root $root/examples/php;
        index index.php;
        location ~ [^/]\.php(/|\$) {
            fastcgi_split_path_info ^(.+?\.php)(/.*)\$;
            try_files \$fastcgi_script_name =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param HTTP_PROXY "";
            fastcgi_pass php;
            fastcgi_keep_conn on;
        }
    }
}
CONF

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# CPU ticks (user+system) used so far by a process and its children (nginx workers).
cpu_ticks() {
    local total=0 pid
    for pid in $1 $(pgrep -P "$1" || true); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
measure() { # name port pid → prints "req/s cpu-us-per-request"
    curl -sf -o /dev/null "http://127.0.0.1:$2$path" || { echo "$1: $path does not answer 200" >&2; exit 1; }
    wrk -t2 -c"$conns" -d2s "http://127.0.0.1:$2$path" >/dev/null   # warm-up
    local before after
    before=$(cpu_ticks "$3")
    wrk -t2 -c"$conns" -d"$duration" --latency "http://127.0.0.1:$2$path" | tee "$work/$1.wrk" >&2
    after=$(cpu_ticks "$3")
    local hz; hz=$(getconf CLK_TCK)
    awk -v t=$((after - before)) -v hz="$hz" '/requests in/ {n=$1} /Requests\/sec/ {rps=$2} END {printf "%s %.1f\n", rps, t / hz * 1e6 / n}' "$work/$1.wrk"
}

"$bin" --config "$work/proxy.ini" 2>"$work/proxy.log" & proxy_pid=$!
wait_port 18481
echo "== fcgiproxy ($path, wrk -t2 -c$conns -d$duration)" >&2
read -r ours ours_cpu < <(measure fcgiproxy 18481 "$proxy_pid")
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=

nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" & nginx_pid=$!
wait_port 18482
echo "== nginx" >&2
read -r theirs theirs_cpu < <(measure nginx 18482 "$nginx_pid")
kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=

awk -v a="$ours" -v b="$theirs" -v ac="$ours_cpu" -v bc="$theirs_cpu" 'BEGIN {
    printf "fcgiproxy %.0f req/s (%.1f CPU-us/request), nginx %.0f req/s (%.1f CPU-us/request): throughput ratio %.2f, CPU ratio %.2f\n", a, ac, b, bc, a / b, ac / bc }'
