#!/usr/bin/env bash
# Load benchmark: api-service (release build) against the same endpoints in Flask under gunicorn, in
# one run, on this machine. Loopback traffic only; every load step is bounded in time.
#
#   api-service/bench/load.sh            # DURATION=10s CONNECTIONS=64 by default
#   PIN=1 api-service/bench/load.sh      # each server on CPU 1 alone, wrk/oha and S3 on CPU 0
#   S3_BACKEND=moto api-service/bench/load.sh   # uploads to moto instead of s3s-fs
#   BIN=/path/to/api-service api-service/bench/load.sh   # measure another build (an earlier commit)
#
# With PIN=1 the comparison gives both servers the same single core and keeps the load generator off
# it, so the generator's own CPU does not count against the faster server (on a 2-core machine, wrk at
# 25k requests/s otherwise takes a large share of the cores api-service would use).
#
# Prints, per endpoint and server: requests/s and p99 at peak (wrk, CONNECTIONS connections), then for
# api-service the p99 at half of its peak rate (oha, fixed rate), RSS idle and peak, and time from
# process start to the first 200 from /healthz, and the CPU time each server spent per request
# (user + system, all of its threads or workers), which is its capacity per core whatever bounds
# the measured rate.
#
# Uploads go, for both servers, to a local S3 endpoint: by default s3s-fs (an S3 server in Rust,
# storing on tmpfs), because moto, a Python emulator, saturates first and then bounds both servers
# at its own rate; S3_BACKEND=moto measures against moto.
#
# Needs: wrk (Debian package), oha and s3s-fs (cargo install; installed under the target dir if
# missing), python3 (a virtualenv with flask, gunicorn, boto3 and moto is made under the target dir).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET/api-bench
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PIN=${PIN:-0}
S3_BACKEND=${S3_BACKEND:-s3s}
if [ "$PIN" = 1 ]; then
  SERVER_CPUS=${SERVER_CPUS:-1}
  LOADGEN_CPUS=${LOADGEN_CPUS:-0}
  SERVER=(taskset -c "$SERVER_CPUS")
  LOADGEN=(taskset -c "$LOADGEN_CPUS")
  SERVER_CORES=$(awk -F, '{print NF}' <<<"$SERVER_CPUS")
else
  SERVER=()
  LOADGEN=()
  SERVER_CORES=$(nproc)
fi
# gunicorn's rule of thumb, for the cores the servers get.
GUNICORN_WORKERS=${GUNICORN_WORKERS:-$(( SERVER_CORES * 2 + 1 ))}
RUST_PORT=18181
FLASK_PORT=18182
S3_PORT=18183
ADMIN_PORT=18184
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$WORK"

log() { printf '\n== %s\n' "$*" >&2; }

# --- tools -----------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else echo "install wrk (apt-get install wrk)" >&2; exit 2; fi
fi
OHA=${OHA:-$(command -v oha || true)}
if [ -z "$OHA" ]; then
  OHA=$WORK/oha/bin/oha
  [ -x "$OHA" ] || { log "installing oha"; cargo install oha --locked --root "$WORK/oha" >&2; }
fi
S3S=$WORK/s3s/bin/s3s-fs
if [ "$S3_BACKEND" = s3s ] && [ ! -x "$S3S" ]; then
  log "installing s3s-fs"
  # 0.14 is the newest release that builds with this toolchain (1.95).
  cargo install s3s-fs@0.14.1 --features binary --locked --root "$WORK/s3s" >&2
fi
VENV=$WORK/venv
if [ ! -x "$VENV/bin/gunicorn" ] || [ ! -x "$VENV/bin/moto_server" ]; then
  log "creating the Python virtualenv"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q flask gunicorn boto3 "moto[server]==5.2.5" >&2
fi
# BIN=path measures another build (an earlier commit's, to compare); else this checkout's is built.
if [ -z "${BIN:-}" ]; then
  log "building api-service (release, with mimalloc as the container image is built)"
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p api-service --features mimalloc >&2)
  BIN=$TARGET/release/api-service
fi

# --- processes ----------------------------------------------------------------------------------------
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
       AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT AWS_EC2_METADATA_DISABLED=true
case "$S3_BACKEND" in
  s3s)
    S3_ROOT=$( [ -d /dev/shm ] && echo /dev/shm || echo "$WORK")/ecsop-api-bench-s3
    rm -rf "$S3_ROOT"; mkdir -p "$S3_ROOT/bench"   # a bucket is a directory
    "${LOADGEN[@]}" "$S3S" --host 127.0.0.1 --port "$S3_PORT" --access-key bench --secret-key bench "$S3_ROOT" \
      >"$WORK/s3s.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.1; done
    ;;
  moto)
    "${LOADGEN[@]}" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$S3_PORT/moto-api/" >/dev/null && break; sleep 0.1; done
    curl -sf -X PUT "http://127.0.0.1:$S3_PORT/bench" >/dev/null
    ;;
  *) echo "S3_BACKEND must be s3s or moto" >&2; exit 2 ;;
esac

# Start to first 200 on /healthz, measured by a tight poll from Python (1 ms steps).
start_and_time() { # name, then the command; prints "pid ms"
  local name=$1; shift
  "$VENV/bin/python" - "$@" <<'PY'
import subprocess, sys, time, urllib.request, os
port = os.environ["READY_PORT"]
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=open(os.environ["READY_LOG"], "w"), stderr=subprocess.STDOUT)
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            if r.status == 200:
                break
    except Exception:
        time.sleep(0.001)
    if time.perf_counter() - t0 > 30:
        sys.exit("not ready in 30 s")
print(proc.pid, round((time.perf_counter() - t0) * 1000, 1))
PY
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { # user + system clock ticks of a process and its children (gunicorn's workers)
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") ))
  done
  echo "$total"
}
wait_idle() { # until a server (and its workers) stops using CPU: gunicorn's sync workers keep serving
  # the requests still queued in the listen backlog after wrk stops (64 x 70 ms for factorial(20000)),
  # which would otherwise land on the next measurement on the same core. At most 30 s.
  local before after
  for _ in $(seq 150); do
    before=$(cpu_ticks "$1"); sleep 0.2; after=$(cpu_ticks "$1")
    [ $(( after - before )) -le 1 ] && return 0
  done
}
tree_rss_kib() { # a process and its children (gunicorn's workers)
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do total=$(( total + $(rss_kib "$pid") )); done
  echo "$total"
}

rm -f "$WORK"/rust.db* "$WORK"/flask.db*
read -r RUST_PID RUST_READY < <(READY_PORT=$RUST_PORT READY_LOG=$WORK/rust.log \
  HOST=127.0.0.1 PORT=$RUST_PORT DATABASE_URL="sqlite://$WORK/rust.db" JWT_SECRET=bench-secret-bench-secret-bench-secret \
  RATE_LIMITS=false ADMIN_ADDR=127.0.0.1:$ADMIN_PORT \
      UPLOAD_BUCKET=bench S3_FORCE_PATH_STYLE=true RUST_LOG=warn start_and_time rust "${SERVER[@]}" "$BIN")
PIDS+=("$RUST_PID")
read -r FLASK_PID FLASK_READY < <(READY_PORT=$FLASK_PORT READY_LOG=$WORK/flask.log \
  FLASK_DB="$WORK/flask.db" UPLOAD_BUCKET=bench \
  start_and_time flask "${SERVER[@]}" "$VENV/bin/gunicorn" --chdir "$ROOT/api-service/bench" -w "$GUNICORN_WORKERS" \
      -b "127.0.0.1:$FLASK_PORT" --log-level warning flask_app:app)
PIDS+=("$FLASK_PID")

# Idle RSS: started, ready, nothing served yet (argon2id's 19 MiB working memory during the seeding
# below stays in glibc's heap afterwards, so it is measured first).
sleep 1
RUST_IDLE=$(rss_kib "$RUST_PID")
FLASK_IDLE=$(tree_rss_kib "$FLASK_PID")

# Seed api-service with the same 50 books the Flask app seeds itself with.
curl -sf -X POST "http://127.0.0.1:$RUST_PORT/api/v1/users" -H 'content-type: application/json' \
  -d '{"username":"bench","email":"bench@example.org","password":"bench-password"}' >/dev/null
TOKEN=$(curl -sf -X POST "http://127.0.0.1:$RUST_PORT/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"username":"bench","password":"bench-password"}' | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for n in $(seq 0 49); do
  isbn=$("$VENV/bin/python" -c "b='978%09d'%$n; s=sum(int(c)*(1 if i%2==0 else 3) for i,c in enumerate(b)); print(b+str((10-s%10)%10))")
  curl -sf -X POST "http://127.0.0.1:$RUST_PORT/api/v1/books" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"title\":\"Book $n\",\"author\":\"Ada Lovelace\",\"isbn\":\"$isbn\",\"published_year\":1843}" >/dev/null
done


# 1 MiB multipart upload for wrk.
"$VENV/bin/python" - "$WORK" "$TOKEN" <<'PY'
import sys
work, token = sys.argv[1], sys.argv[2]
boundary = "benchboundary1234567890"
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.bin\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\n").encode() + bytes(1024 * 1024) + f"\r\n--{boundary}--\r\n".encode()
open(f"{work}/upload.body", "wb").write(body)
with open(f"{work}/upload.lua", "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write(f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"\n')
    f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
    f.write(f'local file = io.open("{work}/upload.body", "rb")\nwrk.body = file:read("*a")\nfile:close()\n')
PY

run_wrk() { # url [lua] -> "rps p99_ms"
  local out
  if [ -n "${2:-}" ]; then out=$("${LOADGEN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$1"); \
  else out=$("${LOADGEN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1"); fi
  echo "$out" >>"$WORK/wrk.log"
  local rps p99 non2xx total
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.2f", v}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "$rps $p99 ${non2xx:-0} $total"
}

cpu_us_per_request() { # ticks_before ticks_after requests
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN {printf "%.0f", (b - a) / hz * 1e6 / (n > 0 ? n : 1)}'
}

run_oha_half() { # url rate [extra oha args...] -> p99_ms
  local url=$1 rate=$2; shift 2
  "${LOADGEN[@]}" "$OHA" --no-tui -z "$DURATION" -q "$rate" -c "$CONNECTIONS" --output-format json "$@" "$url" 2>/dev/null \
    | "$VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["latencyPercentiles"]["p99"]*1000))'
}

declare -A PATHS=(
  [factorial_50]="/api/v1/factorial?number=50"
  [factorial_20000]="/api/v1/factorial?number=20000"
  [book_read]="/api/v1/books/7"
  [book_list]="/api/v1/books"
  [upload_1MiB]="/api/v1/uploads"
)
ORDER=(factorial_50 factorial_20000 book_read book_list upload_1MiB)

printf '\n%-16s %12s %10s %12s %10s %8s %16s %14s %14s %9s\n' endpoint "rust rps" "rust p99" "flask rps" "flask p99" ratio \
  "rust p99 @ 1/2" "rust CPU/req" "flask CPU/req" "CPU ratio"
RUST_PEAK=0
for name in "${ORDER[@]}"; do
  lua=""; [ "$name" = upload_1MiB ] && lua=$WORK/upload.lua
  c0=$(cpu_ticks "$RUST_PID")
  read -r r_rps r_p99 r_bad r_total < <(run_wrk "http://127.0.0.1:$RUST_PORT${PATHS[$name]}" "$lua")
  r_cpu=$(cpu_us_per_request "$c0" "$(cpu_ticks "$RUST_PID")" "$r_total")
  wait_idle "$RUST_PID"
  hwm=$(hwm_kib "$RUST_PID"); [ "$hwm" -gt "$RUST_PEAK" ] && RUST_PEAK=$hwm
  FLASK_LOAD_RSS=$(tree_rss_kib "$FLASK_PID")
  c0=$(cpu_ticks "$FLASK_PID")
  read -r f_rps f_p99 f_bad f_total < <(run_wrk "http://127.0.0.1:$FLASK_PORT${PATHS[$name]}" "$lua")
  f_cpu=$(cpu_us_per_request "$c0" "$(cpu_ticks "$FLASK_PID")" "$f_total")
  wait_idle "$FLASK_PID"
  half=$("$VENV/bin/python" -c "print(max(1, int($r_rps / 2)))")
  if [ "$name" = upload_1MiB ]; then
    h_p99=$(run_oha_half "http://127.0.0.1:$RUST_PORT${PATHS[$name]}" "$half" -m POST \
      -H "authorization: Bearer $TOKEN" -T "multipart/form-data; boundary=benchboundary1234567890" \
      -D "$WORK/upload.body")
  else
    h_p99=$(run_oha_half "http://127.0.0.1:$RUST_PORT${PATHS[$name]}" "$half")
  fi
  wait_idle "$RUST_PID"
  ratio=$("$VENV/bin/python" -c "print('%.1fx' % ($r_rps / max($f_rps, 0.001)))")
  cpu_ratio=$("$VENV/bin/python" -c "print('%.1fx' % ($f_cpu / max($r_cpu, 1)))")
  printf '%-16s %12s %8s ms %12s %8s ms %8s %13s ms %11s us %11s us %9s' "$name" "$r_rps" "$r_p99" "$f_rps" "$f_p99" \
    "$ratio" "$h_p99" "$r_cpu" "$f_cpu" "$cpu_ratio"
  [ "$r_bad$f_bad" != 00 ] && printf '   (non-2xx: rust %s, flask %s)' "$r_bad" "$f_bad"
  printf '\n'
done

printf '\nstart to ready:  api-service %s ms   flask/gunicorn (%s workers) %s ms\n' "$RUST_READY" "$GUNICORN_WORKERS" "$FLASK_READY"
printf 'RSS idle:        api-service %s MiB   flask/gunicorn %s MiB (all workers)\n' \
  "$(awk "BEGIN {printf \"%.1f\", $RUST_IDLE/1024}")" "$(awk "BEGIN {printf \"%.1f\", $FLASK_IDLE/1024}")"
printf 'RSS under load:  api-service peak %s MiB   flask/gunicorn %s MiB (all workers, last sample)\n' \
  "$(awk "BEGIN {printf \"%.1f\", $RUST_PEAK/1024}")" "$(awk "BEGIN {printf \"%.1f\", $FLASK_LOAD_RSS/1024}")"
printf 'wrk: %s threads, %s connections, %s per run; raw output in %s\n' "$THREADS" "$CONNECTIONS" "$DURATION" "$WORK/wrk.log"
if [ "$PIN" = 1 ]; then
  printf 'pinned: servers on CPU %s, wrk/oha and S3 (%s) on CPU %s\n' "$SERVER_CPUS" "$S3_BACKEND" "$LOADGEN_CPUS"
fi
