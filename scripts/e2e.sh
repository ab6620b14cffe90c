#!/usr/bin/env bash
# make e2e: the tests a person would do, on this machine, on loopback only.
#  1. Browser: headless Debian Chromium driven by playwright-core (e2e/),
#     against the real issuer on SQLite, examples/login-consent and the SSO
#     demo apps: login → consent → callback → logout, central SSO with
#     back-channel logout, `gatehouse perform authorization-code`, and the
#     device flow (`gatehouse perform device-code` polling while the
#     browser enters the code, logs in and consents).
#  2. Gateways: examples/nginx/nginx.conf in a real nginx and
#     examples/caddy/Caddyfile in a real Caddy, each in front of
#     examples/upstream with gatehouse-sidecar: identity headers, challenges
#     and DPoP-bound tokens with a jwx client (go test, REQUIRE_NGINX=1,
#     REQUIRE_CADDY=1).
#
# It installs what is missing (Debian packages chromium, chromium-driver,
# nginx, caddy; npm ci in e2e/, never a browser download), builds the binaries,
# starts everything on free loopback ports, and stops exactly the
# processes it started. Screenshots of failed browser tests go to
# e2e/screenshots/, process logs are printed on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '\n== %s\n' "$*"; }

# ---- 1. What the tests need -------------------------------------------
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v npm >/dev/null 2>&1 || need+=(npm)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

log "npm ci (playwright-core only; no browser download)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)

# ---- 2. Binaries --------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-e2e.XXXXXX")
mkdir -p "$WORK/bin" "$WORK/logs"
log "building into $WORK/bin"
go build -o "$WORK/bin/gatehouse" ./issuer/cmd/gatehouse
go build -o "$WORK/bin/login-consent" ./examples/login-consent
go build -o "$WORK/bin/wiki" ./examples/sso/wiki
go build -o "$WORK/bin/tickets" ./examples/sso/tickets

# ---- 3. Processes (only these PIDs are ever signalled) -----------------
PIDS=()
NAMES=()
status=1
cleanup() {
  set +e
  for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null; done
  for i in "${!PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PIDS[$i]}" 2>/dev/null
    wait "${PIDS[$i]}" 2>/dev/null
  done
  if [ "$status" != 0 ]; then
    for f in "$WORK"/logs/*.log; do
      [ -s "$f" ] || continue
      printf '\n---- %s (last 60 lines)\n' "$(basename "$f")"
      tail -n 60 "$f"
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME CMD...: runs CMD in the background, logging to $WORK/logs/NAME.log
  local name=$1
  shift
  "$@" >"$WORK/logs/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_http() { # wait_http NAME URL
  for _ in $(seq 300); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
    for i in "${!PIDS[@]}"; do
      if [ "${NAMES[$i]}" = "$1" ] && ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
        echo "$1 exited before $2 answered" >&2
        return 1
      fi
    done
    sleep 0.1
  done
  echo "$1: $2 did not answer within 30s" >&2
  return 1
}

PUB=$(free_port); ADM=$(free_port); LC=$(free_port); WK=$(free_port); TK=$(free_port); CLI=$(free_port)
ISSUER=http://127.0.0.1:$PUB
ADMIN=http://127.0.0.1:$ADM
LOGIN_APP=http://127.0.0.1:$LC
WIKI=http://127.0.0.1:$WK
TICKETS=http://127.0.0.1:$TK

log "issuer $ISSUER (admin $ADMIN), login app $LOGIN_APP, wiki $WIKI, tickets $TICKETS"
start issuer env \
  DSN="sqlite://$WORK/gatehouse.sqlite" \
  SECRETS_SYSTEM="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT="$PUB" \
  SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT="$ADM" \
  URLS_SELF_ISSUER="$ISSUER" \
  URLS_LOGIN="$LOGIN_APP/login" URLS_CONSENT="$LOGIN_APP/consent" URLS_LOGOUT="$LOGIN_APP/logout" \
  URLS_DEVICE_VERIFICATION="$LOGIN_APP/device" URLS_DEVICE_SUCCESS="$LOGIN_APP/device/done" \
  OAUTH2_DEVICE_AUTHORIZATION_TOKEN_POLLING_INTERVAL=1s \
  LOG_LEVEL=info \
  "$WORK/bin/gatehouse" serve all
wait_http issuer "$ADMIN/health/ready"
if ! curl -fsS "$ISSUER/.well-known/openid-configuration" | grep -q '"authorization_endpoint"'; then
  echo "The issuer advertises no authorization_endpoint: the browser flows (issue 4) are not there yet." >&2
  exit 1
fi

start login-consent "$WORK/bin/login-consent" --listen "127.0.0.1:$LC" --admin-url "$ADMIN"
wait_http login-consent "$LOGIN_APP/health/alive"

GH=("$WORK/bin/gatehouse" create client --endpoint "$ADMIN" --format json
  --grant-type authorization_code,refresh_token --response-type code
  --scope openid,offline_access,profile,email)
"${GH[@]}" --id wiki --secret wiki-demo-secret --name "Team Wiki" \
  --redirect-uri "$WIKI/callback" --post-logout-callback "$WIKI/logged-out" \
  --backchannel-logout-callback "$WIKI/backchannel-logout" >/dev/null
"${GH[@]}" --id tickets --secret tickets-demo-secret --name "Ticket Desk" --skip-consent \
  --redirect-uri "$TICKETS/callback" --post-logout-callback "$TICKETS/logged-out" \
  --backchannel-logout-callback "$TICKETS/backchannel-logout" >/dev/null
"${GH[@]}" --id e2e-cli --secret e2e-cli-demo-secret --name "gatehouse CLI" \
  --redirect-uri "http://127.0.0.1:$CLI/callback" >/dev/null
"$WORK/bin/gatehouse" create client --endpoint "$ADMIN" --format json --id e2e-tv --name "Living Room TV" \
  --grant-type urn:ietf:params:oauth:grant-type:device_code,refresh_token --token-endpoint-auth-method none \
  --scope openid,offline_access,profile >/dev/null

start wiki "$WORK/bin/wiki" --listen "127.0.0.1:$WK" --issuer "$ISSUER" \
  --client-id wiki --client-secret wiki-demo-secret --other "tickets=$TICKETS/"
start tickets "$WORK/bin/tickets" --listen "127.0.0.1:$TK" --issuer "$ISSUER" \
  --client-id tickets --client-secret tickets-demo-secret --other "wiki=$WIKI/"
wait_http wiki "$WIKI/health"
wait_http tickets "$TICKETS/health"

# ---- 4. Tests -----------------------------------------------------------
rm -rf e2e/screenshots
failed=0
log "browser tests (node --test e2e/flows.test.mjs)"
(cd e2e && ISSUER_URL="$ISSUER" LOGIN_APP_URL="$LOGIN_APP" WIKI_URL="$WIKI" TICKETS_URL="$TICKETS" \
  GATEHOUSE_BIN="$WORK/bin/gatehouse" CLI_PORT="$CLI" CLI_CLIENT_ID=e2e-cli CLI_CLIENT_SECRET=e2e-cli-demo-secret \
  DEVICE_CLIENT_ID=e2e-tv \
  node --test flows.test.mjs) || failed=1

log "gateway tests through a real nginx and a real Caddy (go test ./examples/nginx ./examples/caddy)"
REQUIRE_NGINX=1 REQUIRE_CADDY=1 go test -count=1 ./examples/nginx/ ./examples/caddy/ || failed=1

if [ "$failed" = 0 ]; then
  status=0
  log "e2e: all passed"
else
  [ -d e2e/screenshots ] && echo "screenshots: $(ls e2e/screenshots | tr '\n' ' ')" >&2
  log "e2e: FAILED"
  exit 1
fi
