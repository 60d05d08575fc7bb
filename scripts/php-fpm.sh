#!/usr/bin/env bash
# A project-local PHP-FPM: scripts/php-fpm.sh start|stop|status RUNDIR
#
# start   writes RUNDIR/php-fpm.conf (pool listening on unix:RUNDIR/php.sock, mode 0666) and
#         starts php-fpm in the background (it runs with daemonize = no; its pid is in
#         RUNDIR/php-fpm.pid, its log in RUNDIR/php-fpm.log). Does nothing if it already runs.
# stop    SIGTERM, then SIGKILL after 5 s; removes the socket. Does nothing if it is not running.
# status  exit 0 if it runs.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status RUNDIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
rundir=$(cd "$2" && pwd)
pidfile=$rundir/php-fpm.pid
sock=$rundir/php.sock
conf=$rundir/php-fpm.conf

running_pid() {
    local pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

find_fpm() {
    local fpm
    fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$fpm" ]; then
        echo "php-fpm not found in /usr/sbin (apt-get install php-fpm)" >&2
        exit 1
    fi
    echo "$fpm"
}

write_conf() {
    # As root the workers stay root (started with -R): the checkout may sit under a folder
    # only root can enter, and workers as www-data could not read the PHP files there.
    local userlines=""
    cat > "$conf" <<CONF
; Written by scripts/php-fpm.sh; rewritten on every start.
[global]
pid = $pidfile
error_log = $rundir/php-fpm.log
daemonize = no

[app]
$userlines
listen = $sock
listen.mode = 0666
pm = static
pm.max_children = ${FPM_CHILDREN:-4}
catch_workers_output = yes
decorate_workers_output = no
clear_env = no
request_terminate_timeout = 0
php_admin_value[upload_max_filesize] = 64M
php_admin_value[post_max_size] = 64M
php_admin_value[output_buffering] = 0
CONF
}

case $cmd in
start)
    if pid=$(running_pid); then
        echo "php-fpm already running (pid $pid, socket $sock)"
        exit 0
    fi
    fpm=$(find_fpm)
    # Others (nginx workers in the benchmarks) must reach the socket: RUNDIR traversable.
    chmod 755 "$rundir"
    write_conf
    rm -f "$sock"
    asroot=()
    [ "$(id -u)" -eq 0 ] && asroot=(-R)
    nohup "$fpm" --nodaemonize --fpm-config "$conf" "${asroot[@]}" >>"$rundir/php-fpm.out" 2>&1 </dev/null &
    for _ in $(seq 1 100); do
        if [ -S "$sock" ]; then
            echo "php-fpm started ($fpm, pid $(cat "$pidfile" 2>/dev/null || echo '?'), socket $sock)"
            exit 0
        fi
        if ! kill -0 $! 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "php-fpm did not come up; see $rundir/php-fpm.log and $rundir/php-fpm.out" >&2
    tail -n 20 "$rundir/php-fpm.log" "$rundir/php-fpm.out" >&2 2>/dev/null || true
    exit 1
    ;;
stop)
    if pid=$(running_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "php-fpm stopped (pid $pid)"
    fi
    rm -f "$sock" "$pidfile"
    ;;
status)
    if pid=$(running_pid); then
        echo "php-fpm running (pid $pid, socket $sock)"
    else
        echo "php-fpm not running"
        exit 1
    fi
    ;;
*)
    usage
    ;;
esac
