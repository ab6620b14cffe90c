#!/usr/bin/env bash
# `make run`: the issuer on the embedded SQLite default under ./data (public
# API 127.0.0.1:4444, admin API 127.0.0.1:4445, dev mode) with the example
# login and consent app beside it (127.0.0.1:3000) and a demo client, so a
# newcomer can log in from a browser at once. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-$PWD/bin}"
DATA="${DATA:-$PWD/data}"
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

LISTEN=127.0.0.1:3000 HYDRA_ADMIN_URL=http://127.0.0.1:4445 "$BIN/login-consent" &
pids+=($!)

DSN="sqlite://$DATA/gatehouse.sqlite" \
SECRETS_SYSTEM="$(cat "$DATA/dev-secret")" \
SERVE_PUBLIC_HOST=127.0.0.1 SERVE_ADMIN_HOST=127.0.0.1 \
URLS_SELF_ISSUER=http://127.0.0.1:4444 \
URLS_LOGIN=http://127.0.0.1:3000/login \
URLS_CONSENT=http://127.0.0.1:3000/consent \
URLS_LOGOUT=http://127.0.0.1:3000/logout \
"$BIN/gatehouse" serve all --dev &
issuer=$!
pids+=($issuer)

for _ in $(seq 1 100); do
  curl -sf -o /dev/null http://127.0.0.1:4445/health/ready && break
  kill -0 "$issuer" 2>/dev/null || exit 1
  sleep 0.1
done

# The demo client: authorization code (+ refresh) for the browser, client
# credentials for curl. Created once; its secret is printed below.
if ! curl -sf -o /dev/null http://127.0.0.1:4445/admin/clients/demo; then
  curl -sf -o /dev/null -X POST http://127.0.0.1:4445/admin/clients -H 'Content-Type: application/json' -d '{
    "client_id": "demo", "client_secret": "demo-secret-for-local-use", "client_name": "Demo app",
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "response_types": ["code"], "scope": "openid offline_access profile email read write",
    "redirect_uris": ["http://127.0.0.1:4446/callback"],
    "post_logout_redirect_uris": ["http://127.0.0.1:4446/"]
  }' || echo "run: could not create the demo client" >&2
fi

cat >&2 <<MSG

  Login and consent app   http://127.0.0.1:3000 (users alice/wonderland, bob/builder)
  Demo client             demo / demo-secret-for-local-use

  Log in from a browser and see the tokens:
    ./bin/gatehouse perform authorization-code --client-id demo --client-secret demo-secret-for-local-use
  A machine-to-machine token:
    curl -s -u demo:demo-secret-for-local-use -d grant_type=client_credentials -d scope=read http://127.0.0.1:4444/oauth2/token

MSG
wait "$issuer"
