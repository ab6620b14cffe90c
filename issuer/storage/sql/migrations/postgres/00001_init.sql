-- Gatehouse schema, version 1 (postgres dialect).
-- Keep the three dialect files in step: same tables, columns and indexes. Times are Unix microseconds (0 = unset); lists and documents are JSON text.
-- +goose Up
CREATE TABLE clients (
    id VARCHAR(255) NOT NULL DEFAULT '',
    secret_hash TEXT NOT NULL DEFAULT '',
    rotated_secret_hashes TEXT NOT NULL DEFAULT '',
    name VARCHAR(255) NOT NULL DEFAULT '',
    owner VARCHAR(255) NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '',
    registration_access_token_hash TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id)
);
CREATE INDEX clients_name_idx ON clients (name);
CREATE INDEX clients_owner_idx ON clients (owner);
CREATE TABLE jwk_sets (
    set_id VARCHAR(255) NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (set_id)
);
CREATE TABLE jwks (
    set_id VARCHAR(255) NOT NULL DEFAULT '',
    kid VARCHAR(255) NOT NULL DEFAULT '',
    alg VARCHAR(64) NOT NULL DEFAULT '',
    key_use VARCHAR(64) NOT NULL DEFAULT '',
    public_jwk TEXT NOT NULL DEFAULT '',
    private_encrypted BYTEA,
    created_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (set_id, kid)
);
CREATE TABLE tokens (
    kind VARCHAR(64) NOT NULL DEFAULT '',
    signature VARCHAR(512) NOT NULL,
    request_id VARCHAR(255) NOT NULL DEFAULT '',
    client_id VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT FALSE,
    issued_at BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, signature)
);
CREATE INDEX tokens_request_idx ON tokens (request_id);
CREATE INDEX tokens_client_idx ON tokens (client_id);
CREATE INDEX tokens_expires_idx ON tokens (expires_at);
CREATE TABLE flows (
    kind VARCHAR(64) NOT NULL DEFAULT '',
    id VARCHAR(255) NOT NULL DEFAULT '',
    client_id VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    session_id VARCHAR(255) NOT NULL DEFAULT '',
    status VARCHAR(64) NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, id)
);
CREATE INDEX flows_expires_idx ON flows (expires_at);
CREATE INDEX flows_session_idx ON flows (session_id);
CREATE TABLE login_sessions (
    id VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    authenticated_at BIGINT NOT NULL DEFAULT 0,
    remember BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (id)
);
CREATE INDEX login_sessions_subject_idx ON login_sessions (subject);
CREATE INDEX login_sessions_expires_idx ON login_sessions (expires_at);
CREATE TABLE consent_sessions (
    id VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    client_id VARCHAR(255) NOT NULL DEFAULT '',
    login_session_id VARCHAR(255) NOT NULL DEFAULT '',
    remember BOOLEAN NOT NULL DEFAULT FALSE,
    granted_scope TEXT NOT NULL DEFAULT '',
    granted_audience TEXT NOT NULL DEFAULT '',
    handled_at BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (id)
);
CREATE INDEX consent_subject_client_idx ON consent_sessions (subject, client_id);
CREATE INDEX consent_login_session_idx ON consent_sessions (login_session_id);
CREATE INDEX consent_expires_idx ON consent_sessions (expires_at);
CREATE TABLE trusted_issuers (
    id VARCHAR(255) NOT NULL DEFAULT '',
    issuer VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    allow_any_subject BOOLEAN NOT NULL DEFAULT FALSE,
    scope TEXT NOT NULL DEFAULT '',
    key_set VARCHAR(255) NOT NULL DEFAULT '',
    key_id VARCHAR(255) NOT NULL DEFAULT '',
    public_key TEXT NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    CONSTRAINT trusted_issuers_key_uq UNIQUE (issuer, subject, key_id)
);
CREATE INDEX trusted_issuers_find_idx ON trusted_issuers (issuer, subject);
CREATE TABLE nonces (
    nonce_key VARCHAR(512) NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (nonce_key)
);
CREATE INDEX nonces_expires_idx ON nonces (expires_at);

-- +goose Down
DROP TABLE nonces;
DROP TABLE trusted_issuers;
DROP TABLE consent_sessions;
DROP TABLE login_sessions;
DROP TABLE flows;
DROP TABLE tokens;
DROP TABLE jwks;
DROP TABLE jwk_sets;
DROP TABLE clients;
