#!/usr/bin/env bash
# Push and pull of a 1 GiB archive through a local registry (docker-registry, CNCF distribution
# 2.8, on 127.0.0.1), beside a plain curl upload and download of the same blob to the same
# registry (oras is a Go program with no package on the registries this project reaches).
# Wall time and peak RSS from /usr/bin/time -v. Usage: bench/oci.sh [SIZE_MIB] (default 1024).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
runs=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
# MODELSEAL_BIN: an already built release binary (skips the build).
if [ -z "${MODELSEAL_BIN:-}" ]; then
  cargo build --release --quiet --bin modelseal
fi
ms=${MODELSEAL_BIN:-$CARGO_TARGET_DIR/release/modelseal}
command -v docker-registry >/dev/null || { echo "docker-registry is not installed" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is not installed (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/storage"
cat > "$work/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/config.yml" >/dev/null 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
reg="127.0.0.1:$port"

cd "$work"
"$ms" keygen -o author >/dev/null
"$ms" keygen -o reader >/dev/null
head -c "$((size_mib << 20))" /dev/urandom > weights.bin
"$ms" seal -q -k author.key -r reader.pub --name bench --model-version 1.0.0 \
  --compression none -o model.mseal weights.bin >/dev/null
bytes=$(stat -c %s model.mseal)

# time_it LABEL CMD...: appends "LABEL SECONDS MAXRSS_KIB" to results.
time_it() {
  local label=$1; shift
  /usr/bin/time -v -o t.txt "$@" >/dev/null
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' t.txt | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' t.txt)
  echo "$label $wall $rss" >> results.txt
}

for i in $(seq "$runs"); do
  # A fresh repository each round, so no blob is skipped as already there.
  time_it push "$ms" push model.mseal "$reg/bench/ms$i:1.0.0"
  rm -f pulled.mseal
  time_it pull "$ms" pull -q "$reg/bench/ms$i:1.0.0" -t author.pub --no-state -o pulled.mseal
  cmp -s pulled.mseal model.mseal
  digest="sha256:$(sha256sum model.mseal | cut -d' ' -f1)"
  loc=$(curl -fsS -D - -o /dev/null -X POST "http://$reg/v2/bench/curl$i/blobs/uploads/" | awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
  case $loc in http*) ;; *) loc="http://$reg$loc" ;; esac
  sep='?'; case $loc in *\?*) sep='&' ;; esac
  time_it curl-up curl -fsS -X PUT -H 'Content-Type: application/octet-stream' -T model.mseal "$loc${sep}digest=$digest"
  rm -f curl.bin
  time_it curl-down curl -fsS -o curl.bin "http://$reg/v2/bench/curl$i/blobs/$digest"
  # curl does not check the digest: the fair peer is download then sha256sum.
  time_it curl-down+sha256sum sh -c "curl -fsS -o curl.bin 'http://$reg/v2/bench/curl$i/blobs/$digest' && sha256sum curl.bin"
done

echo "archive: $bytes bytes; registry: docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null || echo '?') on loopback; $(nproc) cores; medians of $runs runs"
echo
echo "| operation | wall (s) | MiB/s | peak RSS (MiB) |"
echo "|---|---|---|---|"
for label in push pull curl-up curl-down curl-down+sha256sum; do
  awk -v l="$label" -v b="$bytes" '$1==l {print $2, $3}' results.txt | sort -n | awk -v l="$label" -v b="$bytes" '
    { w[NR]=$1; r[NR]=$2 } END { m=int((NR+1)/2); mr=0; for (i in r) if (r[i]>mr) mr=r[i];
      printf "| %s | %.2f | %.0f | %.1f |\n", l, w[m], b/1048576/w[m], mr/1024 }'
done
