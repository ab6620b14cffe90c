#!/usr/bin/env bash
# The routes of apisix.yaml through APISIX's Admin API (traditional
# deployment with etcd), for clusters not run in standalone mode:
#   APISIX_ADMIN=http://127.0.0.1:9180 APISIX_ADMIN_KEY=... apisix/admin-api.sh
# apisix_test.go checks each JSON body below equals the same object in
# apisix.yaml.
set -euo pipefail
ADMIN="${APISIX_ADMIN:-http://127.0.0.1:9180}"
KEY="${APISIX_ADMIN_KEY:?set APISIX_ADMIN_KEY to the admin key of conf/config.yaml}"

put() { # put <kind> <id>, JSON body on stdin
  curl -fsS -X PUT "$ADMIN/apisix/admin/$1/$2" -H "X-API-KEY: $KEY" -H 'Content-Type: application/json' --data-binary @-
  echo
}

put upstreams app <<'JSON'
{
  "type": "roundrobin",
  "nodes": {"127.0.0.1:8081": 1}
}
JSON

put routes app-browser <<'JSON'
{
  "uri": "/app/*",
  "upstream_id": "app",
  "plugins": {
    "openid-connect": {
      "discovery": "http://127.0.0.1:4444/.well-known/openid-configuration",
      "client_id": "apisix",
      "client_secret": "apisix-demo-client-secret",
      "scope": "openid profile email",
      "bearer_only": false,
      "realm": "gatehouse",
      "redirect_uri": "http://127.0.0.1:9080/app/callback",
      "logout_path": "/app/logout",
      "post_logout_redirect_uri": "http://127.0.0.1:9080/app/",
      "use_pkce": true,
      "set_access_token_header": true,
      "access_token_in_authorization_header": true,
      "set_id_token_header": false,
      "set_userinfo_header": true,
      "session": {"secret": "change-me-apisix-session-secret-32b"}
    }
  }
}
JSON

put routes api-introspection <<'JSON'
{
  "uri": "/api/*",
  "upstream_id": "app",
  "plugins": {
    "openid-connect": {
      "discovery": "http://127.0.0.1:4444/.well-known/openid-configuration",
      "client_id": "apisix-introspect",
      "client_secret": "apisix-introspection-secret-0123456789",
      "bearer_only": true,
      "realm": "gatehouse",
      "introspection_endpoint": "http://127.0.0.1:4456/introspect",
      "introspection_endpoint_auth_method": "client_secret_basic",
      "set_access_token_header": true,
      "access_token_in_authorization_header": true,
      "set_userinfo_header": false
    }
  }
}
JSON

put routes api-forward-auth <<'JSON'
{
  "uri": "/fa/*",
  "upstream_id": "app",
  "plugins": {
    "forward-auth": {
      "uri": "http://127.0.0.1:4456/auth",
      "request_method": "GET",
      "request_headers": ["Authorization", "DPoP"],
      "extra_headers": {"X-Forwarded-Host": "$http_host"},
      "upstream_headers": ["X-User-Id", "X-Client-Id", "X-User-Scopes"],
      "client_headers": ["WWW-Authenticate", "DPoP-Nonce"],
      "timeout": 3000,
      "keepalive": true
    }
  }
}
JSON

put routes api-internal-token <<'JSON'
{
  "uri": "/orders/*",
  "upstream_id": "app",
  "plugins": {
    "forward-auth": {
      "uri": "http://127.0.0.1:4456/auth",
      "request_method": "GET",
      "request_headers": ["Authorization", "DPoP"],
      "extra_headers": {"X-Forwarded-Host": "$http_host"},
      "upstream_headers": ["X-User-Id", "X-Client-Id", "X-User-Scopes", "Authorization"],
      "client_headers": ["WWW-Authenticate", "DPoP-Nonce"],
      "timeout": 3000,
      "keepalive": true
    }
  }
}
JSON
