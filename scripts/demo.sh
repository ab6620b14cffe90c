#!/usr/bin/env bash
# `make demo`: central single sign-on and the gateway path on one machine,
# on loopback only, on the ports the kits in envoy/, apisix/ and
# examples/nginx/ are written for:
#
#   issuer (gatehouse)        public 127.0.0.1:4444, admin 127.0.0.1:4445 (SQLite)
#   login and consent app     127.0.0.1:3000  (examples/login-consent)
#   SSO apps                  wiki 127.0.0.1:5001, tickets 127.0.0.1:5002 (examples/sso)
#   gatehouse-sidecar         HTTP /auth 127.0.0.1:4456, gRPC ext_authz 127.0.0.1:9191
#                             (examples/nginx/sidecar.yaml)
#   upstream apps             app 127.0.0.1:8081, api 127.0.0.1:8082 (examples/upstream)
#   orders                    127.0.0.1:8083 (examples/orders: calls api with an exchanged token)
#   nginx, if installed       127.0.0.1:8080 (examples/nginx/nginx.conf, unchanged)
#
# Every port can be moved with an environment variable (defaults shown):
#   SERVE_PUBLIC_PORT=4444 SERVE_ADMIN_PORT=4445 LOGIN_PORT=3000
#   WIKI_PORT=5001 TICKETS_PORT=5002 SIDECAR_HTTP_PORT=4456
#   SIDECAR_GRPC_PORT=9191 APP_PORT=8081 API_PORT=8082 ORDERS_PORT=8083
#   GATEWAY_PORT=8080
# (the kits in envoy/ and apisix/ are written for the defaults; nginx gets
# a copy of examples/nginx/nginx.conf with the ports in use).
#
# It registers the clients the apps need (wiki, tickets, demo-api for
# client credentials, and orders for token exchange), prints the URLs and a ready-made curl with a token,
# and stops exactly the processes it started, by PID: Ctrl-C (SIGINT) or
# SIGTERM is a clean stop (exit status 0, nothing more printed); when a part
# exits on its own, the demo stops everything, prints the last lines of that
# part's log and exits 1.
#
# The database is SQLite in a temporary directory, removed on exit; set
# DATA=./data to keep it (as data/demo.sqlite, with the system secret in
# data/dev-secret shared with `make run`). BIN is where binaries go
# (default ./bin); with BIN set, gatehouse and gatehouse-sidecar are built
# only if missing there (`make demo` builds them first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -n "${BIN:-}" ]; then
  REBUILD=0
else
  BIN=$ROOT/bin
  REBUILD=1
fi
mkdir -p "$BIN"
BIN=$(cd "$BIN" && pwd)

PUBLIC_PORT=${SERVE_PUBLIC_PORT:-4444}
ADMIN_PORT=${SERVE_ADMIN_PORT:-4445}
LOGIN_PORT=${LOGIN_PORT:-3000}
WIKI_PORT=${WIKI_PORT:-5001}
TICKETS_PORT=${TICKETS_PORT:-5002}
SIDECAR_HTTP_PORT=${SIDECAR_HTTP_PORT:-4456}
SIDECAR_GRPC_PORT=${SIDECAR_GRPC_PORT:-9191}
APP_PORT=${APP_PORT:-8081}
API_PORT=${API_PORT:-8082}
ORDERS_PORT=${ORDERS_PORT:-8083}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
ISSUER=http://127.0.0.1:$PUBLIC_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
LOGIN_APP=http://127.0.0.1:$LOGIN_PORT
WIKI=http://127.0.0.1:$WIKI_PORT
TICKETS=http://127.0.0.1:$TICKETS_PORT
SIDECAR=http://127.0.0.1:$SIDECAR_HTTP_PORT
APP=http://127.0.0.1:$APP_PORT
API=http://127.0.0.1:$API_PORT
ORDERS=http://127.0.0.1:$ORDERS_PORT
GATEWAY=http://127.0.0.1:$GATEWAY_PORT
API_CLIENT=demo-api
API_SECRET=demo-api-secret
ORDERS_CLIENT=orders
ORDERS_SECRET=orders-demo-secret

say() { printf '%s\n' "$*" >&2; }

NGINX=
for n in nginx /usr/sbin/nginx; do
  if command -v "$n" >/dev/null 2>&1; then NGINX=$(command -v "$n"); break; fi
done

# ---- Ports: refuse to start over something else (`make run`, say) ------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$PUBLIC_PORT" "$ADMIN_PORT" "$LOGIN_PORT" "$WIKI_PORT" "$TICKETS_PORT" "$SIDECAR_HTTP_PORT" "$SIDECAR_GRPC_PORT" "$APP_PORT" "$API_PORT" "$ORDERS_PORT")
[ -n "$NGINX" ] && ports+=("$GATEWAY_PORT")
busy=()
for p in "${ports[@]}"; do port_busy "$p" && busy+=("$p"); done
if ((${#busy[@]})); then
  say "demo: 127.0.0.1 port(s) ${busy[*]} already in use (is \`make run\` or another demo running?). Stop it first, or move the demo's ports (see the top of scripts/demo.sh)."
  exit 1
fi

# ---- Binaries ------------------------------------------------------------
say "demo: building into $BIN"
build() { # build NAME PKG
  go build -o "$BIN/$1" "$2"
}
for b in "gatehouse ./issuer/cmd/gatehouse" "gatehouse-sidecar ./sidecar/cmd/gatehouse-sidecar"; do
  set -- $b
  if [ "$REBUILD" = 1 ] || [ ! -x "$BIN/$1" ]; then build "$1" "$2"; fi
done
build login-consent ./examples/login-consent
build wiki ./examples/sso/wiki
build tickets ./examples/sso/tickets
build upstream ./examples/upstream
build orders ./examples/orders

# ---- Data ------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-demo.XXXXXX")
mkdir -p "$WORK/logs" "$WORK/nginx/tmp"
if [ -n "${DATA:-}" ]; then
  mkdir -p "$DATA"
  DATA=$(cd "$DATA" && pwd)
  DB="$DATA/demo.sqlite"
  [ -s "$DATA/dev-secret" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DATA/dev-secret")
  SYSTEM_SECRET=$(cat "$DATA/dev-secret")
else
  DB="$WORK/gatehouse.sqlite"
  SYSTEM_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
fi

# ---- Processes (only these PIDs are ever signalled) -----------------------
PIDS=()
NAMES=()
FAILED=() # the parts that failed on their own: only their logs are shown
status=1
cleanup() {
  set +e
  trap - EXIT INT TERM
  for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null; done
  for i in "${!PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${PIDS[$i]}" 2>/dev/null
    wait "${PIDS[$i]}" 2>/dev/null
  done
  if [ "$status" = 0 ]; then
    ((${#PIDS[@]})) && say "" && say "demo: stopped"
  else
    local logs=()
    for n in "${FAILED[@]}"; do logs+=("$WORK/logs/$n.log"); done
    ((${#logs[@]})) || logs=("$WORK"/logs/*.log)
    for f in "${logs[@]}"; do
      [ -s "$f" ] || continue
      printf '\n---- %s (last 30 lines)\n' "$(basename "$f")" >&2
      tail -n 30 "$f" >&2
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
# Ctrl-C (the terminal signals the whole process group, so the parts get it
# too) and SIGTERM are a clean stop.
trap 'status=0; exit 0' INT TERM

start() { # start NAME CMD...: CMD in the background, output to $WORK/logs/NAME.log
  local name=$1
  shift
  "$@" >"$WORK/logs/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
}

wait_http() { # wait_http NAME URL: until URL answers 200, NAME exits, or 30 s
  for _ in $(seq 300); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
    for i in "${!PIDS[@]}"; do
      if [ "${NAMES[$i]}" = "$1" ] && ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
        say "demo: $1 exited before $2 answered"
        FAILED+=("$1")
        return 1
      fi
    done
    sleep 0.1
  done
  say "demo: $1: $2 did not answer within 30s"
  FAILED+=("$1")
  return 1
}

say "demo: starting the issuer (SQLite $DB)"
start issuer env \
  DSN="sqlite://$DB" \
  SECRETS_SYSTEM="$SYSTEM_SECRET" \
  SERVE_PUBLIC_HOST=127.0.0.1 SERVE_PUBLIC_PORT="$PUBLIC_PORT" \
  SERVE_ADMIN_HOST=127.0.0.1 SERVE_ADMIN_PORT="$ADMIN_PORT" \
  URLS_SELF_ISSUER="$ISSUER" \
  URLS_LOGIN="$LOGIN_APP/login" URLS_CONSENT="$LOGIN_APP/consent" URLS_LOGOUT="$LOGIN_APP/logout" \
  LOG_LEVEL=info LOG_FORMAT=text \
  "$BIN/gatehouse" serve all
wait_http issuer "$ADMIN/health/ready"

start login-consent "$BIN/login-consent" --listen "127.0.0.1:$LOGIN_PORT" --admin-url "$ADMIN"

# Clients, created when missing (a kept DATA directory already has them).
client() { # client ID ARGS...
  local id=$1
  shift
  if ! curl -fsS -o /dev/null "$ADMIN/admin/clients/$id" 2>/dev/null; then
    "$BIN/gatehouse" create client --endpoint "$ADMIN" --format json --id "$id" "$@" >/dev/null
  fi
}
SSO=(--grant-type authorization_code,refresh_token --response-type code --scope openid,offline_access,profile,email)
client wiki "${SSO[@]}" --secret wiki-demo-secret --name "Team Wiki" \
  --redirect-uri "$WIKI/callback" --post-logout-callback "$WIKI/logged-out" \
  --backchannel-logout-callback "$WIKI/backchannel-logout"
client tickets "${SSO[@]}" --secret tickets-demo-secret --name "Ticket Desk" --skip-consent \
  --redirect-uri "$TICKETS/callback" --post-logout-callback "$TICKETS/logged-out" \
  --backchannel-logout-callback "$TICKETS/backchannel-logout"
client "$API_CLIENT" --secret "$API_SECRET" --name "Demo API client" \
  --grant-type client_credentials --scope read,write
# orders exchanges its callers' tokens (RFC 8693) for tokens for the api,
# with its own client_credentials token as the actor.
client "$ORDERS_CLIENT" --secret "$ORDERS_SECRET" --name "Orders (token exchange)" \
  --grant-type client_credentials,urn:ietf:params:oauth:grant-type:token-exchange --scope read --audience "$API"

start wiki "$BIN/wiki" --listen "127.0.0.1:$WIKI_PORT" --issuer "$ISSUER" \
  --client-id wiki --client-secret wiki-demo-secret --other "tickets=$TICKETS/"
start tickets "$BIN/tickets" --listen "127.0.0.1:$TICKETS_PORT" --issuer "$ISSUER" \
  --client-id tickets --client-secret tickets-demo-secret --other "wiki=$WIKI/"
start sidecar "$BIN/gatehouse-sidecar" --config examples/nginx/sidecar.yaml --issuer "$ISSUER" \
  --introspection-url "$ADMIN/admin/oauth2/introspect" \
  --http-listen "127.0.0.1:$SIDECAR_HTTP_PORT" --grpc-listen "127.0.0.1:$SIDECAR_GRPC_PORT"
start app "$BIN/upstream" --listen "127.0.0.1:$APP_PORT" --name app
start api "$BIN/upstream" --listen "127.0.0.1:$API_PORT" --name api
start orders "$BIN/orders" --listen "127.0.0.1:$ORDERS_PORT" --issuer "$ISSUER" \
  --introspection-url "$ADMIN/admin/oauth2/introspect" --client-id "$ORDERS_CLIENT" --client-secret "$ORDERS_SECRET" \
  --api-url "$API"
if [ -n "$NGINX" ]; then
  # examples/nginx/nginx.conf, unchanged on the default ports.
  sed -e "s/127\.0\.0\.1:4456;/127.0.0.1:$SIDECAR_HTTP_PORT;/" -e "s/127\.0\.0\.1:8081;/127.0.0.1:$APP_PORT;/" \
    -e "s/listen 127\.0\.0\.1:8080\([ ;]\)/listen 127.0.0.1:$GATEWAY_PORT\1/" "$ROOT/examples/nginx/nginx.conf" >"$WORK/nginx/nginx.conf"
  start nginx "$NGINX" -p "$WORK/nginx" -e stderr -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
fi

wait_http login-consent "$LOGIN_APP/health/alive"
wait_http wiki "$WIKI/health"
wait_http tickets "$TICKETS/health"
wait_http sidecar "$SIDECAR/health/ready"
wait_http app "$APP/health"
wait_http api "$API/health"
wait_http orders "$ORDERS/health"
[ -z "$NGINX" ] || wait_http nginx "$GATEWAY/nginx-health"

TOKEN=$(curl -fsS -u "$API_CLIENT:$API_SECRET" -d grant_type=client_credentials -d scope=read "$ISSUER/oauth2/token" |
  sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
if [ -z "$TOKEN" ]; then
  say "demo: could not get a token for $API_CLIENT"
  exit 1
fi

if [ -n "$NGINX" ]; then
  GW_LINE="nginx             $GATEWAY/  (auth_request to the sidecar's /auth, then app $APP)"
  CURL="curl -s -H 'Authorization: Bearer $TOKEN' $GATEWAY/api/things"
  CURL_NO="curl -i $GATEWAY/api/things"
else
  GW_LINE="nginx             not installed (apt-get install nginx): asking the sidecar directly instead"
  CURL="curl -i -H 'Authorization: Bearer $TOKEN' $SIDECAR/auth"
  CURL_NO="curl -i $SIDECAR/auth"
fi

cat >&2 <<MSG

  Gatehouse demo: everything on 127.0.0.1. Ctrl-C stops it all.

  Central single sign-on
    Team Wiki         $WIKI/     sign in as alice / wonderland (or bob / builder), tick "Remember me"
    Ticket Desk       $TICKETS/     then open it: you are signed in without a form
    Sign out of one, reload the other: signed out too (back-channel logout).

  Identity
    issuer            $ISSUER/.well-known/openid-configuration
    admin API         $ADMIN/admin/clients  (private in production)
    login and consent $LOGIN_APP

  Gateway path
    $GW_LINE
    sidecar           $SIDECAR/auth (forward-auth), 127.0.0.1:$SIDECAR_GRPC_PORT (Envoy ext_authz)
    upstream apps     $APP (app), $API (api; envoy -c envoy/envoy-api.yaml puts Envoy on 10001 in front)
    orders            $ORDERS/orders (calls the api with a token exchanged for the caller's)

  A request with a token (client $API_CLIENT, valid for an hour):
    $CURL
  Without one (401 with WWW-Authenticate):
    $CURL_NO
  The same token exchanged by orders (RFC 8693) for one for the api; act names orders:
    curl -s -H 'Authorization: Bearer $TOKEN' $ORDERS/orders | jq .exchanged.act
  A fresh token:
    curl -s -u $API_CLIENT:$API_SECRET -d grant_type=client_credentials -d scope=read $ISSUER/oauth2/token

  Logs: $WORK/logs/
MSG

# Run until Ctrl-C (the INT trap: a clean stop) or until a part exits on its
# own. The parts get the terminal's SIGINT too and may exit before this
# shell runs its trap: wait a moment for the trap before calling it a
# failure.
set +e
wait -n "${PIDS[@]}"
sleep 1
for i in "${!PIDS[@]}"; do
  if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
    say "demo: ${NAMES[$i]} exited"
    FAILED+=("${NAMES[$i]}")
  fi
done
exit 1
