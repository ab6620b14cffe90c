#!/usr/bin/env bash
# `make run`: the issuer on the embedded SQLite default under ./data, in dev
# mode (so both listeners bind 127.0.0.1), with the example login and
# consent app beside it and a demo client, so a newcomer can log in from a
# browser at once. Ctrl-C stops both.
#
# Ports (each variable moves everything that refers to its port: the issuer
# URL, the login app's admin URL, the issuer's login/consent/logout URLs and
# the commands printed at the end):
#   SERVE_PUBLIC_PORT  public API   (default 4444)
#   SERVE_ADMIN_PORT   admin API    (default 4445)
#   LOGIN_APP_PORT     login app    (default 3000)
# A port already in use stops the script before anything starts.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-$PWD/bin}"
DATA="${DATA:-$PWD/data}"
PUBLIC_PORT="${SERVE_PUBLIC_PORT:-4444}"
ADMIN_PORT="${SERVE_ADMIN_PORT:-4445}"
LOGIN_PORT="${LOGIN_APP_PORT:-3000}"

# A connection that succeeds means someone already listens there; the
# readiness probe below would then find that server instead of ours.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
bad=0
for p in "$PUBLIC_PORT public API, SERVE_PUBLIC_PORT" "$ADMIN_PORT admin API, SERVE_ADMIN_PORT" \
  "$LOGIN_PORT login app, LOGIN_APP_PORT"; do
  port=${p%% *}
  if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    echo "run: \"$port\" (${p#* }) is not a TCP port" >&2
    bad=1
  elif in_use "$port"; then
    echo "run: port $port (${p#* }) is already in use on 127.0.0.1; see who listens with: ss -ltnp 'sport = :$port'" >&2
    bad=1
  fi
done
if [ "$(printf '%s\n' "$PUBLIC_PORT" "$ADMIN_PORT" "$LOGIN_PORT" | sort -u | wc -l)" != 3 ]; then
  echo "run: SERVE_PUBLIC_PORT, SERVE_ADMIN_PORT and LOGIN_APP_PORT must differ ($PUBLIC_PORT, $ADMIN_PORT, $LOGIN_PORT)" >&2
  bad=1
fi
if ((bad)); then
  echo "run: pick other ports (or stop what uses them), e.g. SERVE_PUBLIC_PORT=5444 SERVE_ADMIN_PORT=5445 LOGIN_APP_PORT=5000 make run" >&2
  exit 1
fi

ISSUER=http://127.0.0.1:$PUBLIC_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
LOGIN_APP=http://127.0.0.1:$LOGIN_PORT

mkdir -p "$DATA"
go build -o "$BIN/login-consent" ./examples/login-consent

# A system secret generated once, so keys survive restarts.
[ -s "$DATA/dev-secret" ] || (head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DATA/dev-secret")

pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

LISTEN=127.0.0.1:$LOGIN_PORT HYDRA_ADMIN_URL=$ADMIN "$BIN/login-consent" &
login=$!
pids+=($login)

DSN="sqlite://$DATA/gatehouse.sqlite" \
SECRETS_SYSTEM="$(cat "$DATA/dev-secret")" \
SERVE_PUBLIC_PORT=$PUBLIC_PORT SERVE_ADMIN_PORT=$ADMIN_PORT \
URLS_SELF_ISSUER=$ISSUER \
URLS_LOGIN=$LOGIN_APP/login \
URLS_CONSENT=$LOGIN_APP/consent \
URLS_LOGOUT=$LOGIN_APP/logout \
URLS_DEVICE_VERIFICATION=$LOGIN_APP/device \
URLS_DEVICE_SUCCESS=$LOGIN_APP/device/done \
"$BIN/gatehouse" serve all --dev &
issuer=$!
pids+=($issuer)

ready=0
for _ in $(seq 1 300); do
  kill -0 "$issuer" 2>/dev/null || { echo "run: the issuer exited (its log is above)" >&2; exit 1; }
  kill -0 "$login" 2>/dev/null || { echo "run: the login app exited (its log is above)" >&2; exit 1; }
  if curl -sf -m 2 -o /dev/null "$ADMIN/health/ready" && curl -sf -m 2 -o /dev/null "$LOGIN_APP/health/alive"; then
    ready=1
    break
  fi
  sleep 0.1
done
((ready)) || { echo "run: the issuer or the login app did not become ready within 30 s" >&2; exit 1; }

# The demo client: authorization code (+ refresh) for the browser, client
# credentials for curl, the device flow (RFC 8628) for the CLI as a device. Written at every start, so a ./data from an older
# version gets today's settings. Its scopes include both refresh scopes:
# `offline` (what `gatehouse perform authorization-code` asks for by
# default, as Hydra's CLI does) and `offline_access` (OpenID Connect's).
# The redirect URI is the CLI's callback; any port of it is accepted
# (loopback redirect URIs, RFC 8252 section 7.3), so it needs no moving.
demo='{
  "client_id": "demo", "client_secret": "demo-secret-for-local-use", "client_name": "Demo app",
  "grant_types": ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"],
  "response_types": ["code"], "scope": "openid offline offline_access profile email read write",
  "redirect_uris": ["http://127.0.0.1:4446/callback"],
  "post_logout_redirect_uris": ["http://127.0.0.1:4446/"]
}'
if ! curl -sf -o /dev/null -X PUT "$ADMIN/admin/clients/demo" -H 'Content-Type: application/json' -d "$demo" &&
  ! curl -sf -o /dev/null -X POST "$ADMIN/admin/clients" -H 'Content-Type: application/json' -d "$demo"; then
  echo "run: could not create the demo client" >&2
  exit 1
fi

moved=
if [ "$PUBLIC_PORT$ADMIN_PORT" != 44444445 ]; then
  moved="
  The CLI's defaults are 127.0.0.1:4444 and :4445; in the terminal you use it from, first run:
    export HYDRA_PUBLIC_URL=$ISSUER HYDRA_ADMIN_URL=$ADMIN
"
fi
cat >&2 <<MSG

  Issuer (public API)     $ISSUER
  Admin API               $ADMIN
  Login and consent app   $LOGIN_APP (users alice/wonderland, bob/builder)
  Demo client             demo / demo-secret-for-local-use
$moved
  Log in from a browser and see the tokens:
    ./bin/gatehouse perform authorization-code --client-id demo --client-secret demo-secret-for-local-use
  The CLI as a device (open the link it prints, enter the code, log in):
    ./bin/gatehouse perform device-code --client-id demo --client-secret demo-secret-for-local-use
  A machine-to-machine token:
    curl -s -u demo:demo-secret-for-local-use -d grant_type=client_credentials -d scope=read $ISSUER/oauth2/token

MSG
wait "$issuer"
