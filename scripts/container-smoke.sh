#!/usr/bin/env bash
# Builds redtape's container image with podman and runs it, checking from the host (ports on
# 127.0.0.1 only): on the embedded store, then with deploy/compose.yaml on PostgreSQL; each
# time /readyz, a filing and /metrics.
#
#   scripts/container-smoke.sh           fast: the image around a binary already built
#                                        (the newer of target/release and target/debug)
#   scripts/container-smoke.sh --full    the multi-stage deploy/Dockerfile build, timed
#
# There is no Docker daemon or registry on these machines: the set-up follows
# deploy/podman/ (podman and runc from Debian with deploy/podman/containers.conf, a base image
# made by debootstrap, stand-ins for the rust and postgres images, podman-compose from PyPI),
# idempotently, so a second run only builds and checks. Needs root (apt, podman).
set -euo pipefail
cd "$(dirname "$0")/.."

full=false
case "${1:-}" in
  --full) full=true ;;
  "") ;;
  *) echo "usage: $0 [--full]" >&2; exit 2 ;;
esac
podman_dir=deploy/podman
say() { echo "container-smoke: $*"; }
started=$(date +%s)

# 1. podman, runc, debootstrap; the engine settings this machine needs.
if ! command -v podman > /dev/null || ! command -v runc > /dev/null \
   || ! command -v debootstrap > /dev/null; then
  say "installing podman, runc and debootstrap (Debian)"
  apt-get install -y -q podman runc debootstrap > /dev/null
fi
if ! cmp -s "$podman_dir/containers.conf" /etc/containers/containers.conf; then
  install -D -m 0644 "$podman_dir/containers.conf" /etc/containers/containers.conf
fi

# 2. debian:bookworm-slim, made from the mirror apt already uses.
if ! podman image exists localhost/debian:bookworm-slim; then
  # The Debian archive itself (not security, not third-party repositories).
  mirror=$( { grep -rhoE '^URIs: *http[^ ]+' /etc/apt/sources.list.d/ 2>/dev/null \
                | awk '{print $2}'
              grep -hoE '^deb +http[^ ]+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'
            } | grep -E '/debian/?$' | head -1 || true)
  say "making debian:bookworm-slim with debootstrap from ${mirror:?no Debian mirror found}"
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > /dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import - localhost/debian:bookworm-slim > /dev/null
  rm -rf "$rootfs"
fi

# 3. The image.
build_started=$(date +%s)
if $full; then
  if ! podman image exists localhost/rust:1-bookworm; then
    say "making the rust:1-bookworm stand-in from this machine's toolchain"
    toolchain=$(rustc --print sysroot)
    podman build -q -v "$toolchain:/tc:ro" -v /usr/local/share/ca-certificates:/hostca:ro \
      -t localhost/rust:1-bookworm "$podman_dir/rust" > /dev/null
  fi
  say "building deploy/Dockerfile (multi-stage)"
  # The stage is named explicitly: buildah 1.28 does not resolve the ARG's default to a stage.
  podman build -q -f deploy/Dockerfile --build-arg REDTAPE_BINARY=builder \
    -t localhost/redtape:local . > /dev/null
else
  # The newer of the release and debug binaries (CI has only the tests' debug one).
  binary=$(ls -t target/release/redtape target/debug/redtape 2> /dev/null | head -1 || true)
  [ -n "$binary" ] || { echo "no binary: run cargo build -p redtape first" >&2; exit 1; }
  context=$(mktemp -d)
  cp "$binary" "$context/redtape"
  say "building the runtime image around $binary"
  podman build -q -f deploy/Dockerfile --build-arg REDTAPE_BINARY=prebuilt \
    -t localhost/redtape:local "$context" > /dev/null
  rm -rf "$context"
fi
say "image built in $(( $(date +%s) - build_started )) s"

# Checks a running service at $1: ready on store $2, files one timing with the token printed
# by the command in $3..., and finds the filing in /metrics.
check() {
  local base=$1 store=$2; shift 2
  for _ in $(seq 1 60); do
    curl -fsS "$base/readyz" > /dev/null 2>&1 && break
    sleep 1
  done
  local ready
  ready=$(curl -fsS "$base/readyz")
  echo "$ready" | grep -q "\"store\":\"$store\"" || { echo "not ready on $store: $ready" >&2; exit 1; }
  local token
  token=$("$@" redtape token issue --role business 2> /dev/null | tail -1)
  local status
  status=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$base/v1/timings" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"procedure_code":"1.001612","province_code":"79","submitted_on":"2025-09-02",
         "completed_on":"2025-09-10","outcome":"granted","channel":"online",
         "costs":{"official_fees":50000,"external_services":1500000},"staff_hours":6.5,"visits":1}')
  [ "$status" = 201 ] || { echo "filing on $store answered $status" >&2; exit 1; }
  # Read whole before grep -q, which stops at the first match (curl would then fail
  # writing, and pipefail would report that).
  local metrics
  metrics=$(curl -fsS "$base/metrics")
  grep -q '^redtape_filings_total{operation="timing",outcome="accepted",problem="",rule=""} 1$' \
    <<< "$metrics" || { echo "/metrics on $store does not count the filing" >&2; exit 1; }
  say "$store: /readyz ready, a filing 201, /metrics counts it"
}

# 4. The embedded store, in one container.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
podman rm -fv redtape-smoke > /dev/null 2>&1 || true
podman run -d --name redtape-smoke -p "127.0.0.1:$port:8080" localhost/redtape:local > /dev/null
trap 'podman rm -fv redtape-smoke > /dev/null 2>&1 || true' EXIT
check "http://127.0.0.1:$port" sqlite podman exec redtape-smoke
podman rm -fv redtape-smoke > /dev/null

# 5. PostgreSQL with compose (podman-compose from PyPI: Debian's ignores `name:`).
if ! podman image exists localhost/postgres:15; then
  say "making the postgres:15 stand-in"
  podman build -q -t localhost/postgres:15 "$podman_dir/postgres" > /dev/null
fi
venv=target/podman-compose
if [ ! -x "$venv/bin/podman-compose" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q podman-compose==1.6.0
fi
compose() { "$venv/bin/podman-compose" -f deploy/compose.yaml -f "$podman_dir/ci-override.yaml" "$@"; }
# `down -v` removes the named volume; the image's anonymous data volume is removed by name.
volumes=""
down() {
  compose down -v > /dev/null 2>&1 || true
  for v in $volumes; do podman volume rm -f "$v" > /dev/null 2>&1 || true; done
}
trap down EXIT
compose up -d > /dev/null 2>&1
volumes=$(podman inspect redtape_redtape_1 --format '{{range .Mounts}}{{.Name}} {{end}}')
check "http://127.0.0.1:18085" postgres podman exec redtape_redtape_1
down
trap - EXIT
say "done in $(( $(date +%s) - started )) s"
