-- Gatehouse schema, version 1 (mysql dialect).
-- Keep the three dialect files in step: same tables, columns and indexes. Times are Unix microseconds (0 = unset); lists and documents are JSON text.
-- +goose Up
CREATE TABLE clients (
    id VARCHAR(255) NOT NULL DEFAULT '',
    secret_hash TEXT NOT NULL,
    rotated_secret_hashes TEXT NOT NULL,
    name VARCHAR(255) NOT NULL DEFAULT '',
    owner VARCHAR(255) NOT NULL DEFAULT '',
    metadata LONGTEXT NOT NULL,
    registration_access_token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX clients_name_idx ON clients (name);
CREATE INDEX clients_owner_idx ON clients (owner);
CREATE TABLE jwk_sets (
    set_id VARCHAR(255) NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (set_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE jwks (
    set_id VARCHAR(255) NOT NULL DEFAULT '',
    kid VARCHAR(255) NOT NULL DEFAULT '',
    alg VARCHAR(64) NOT NULL DEFAULT '',
    key_use VARCHAR(64) NOT NULL DEFAULT '',
    public_jwk LONGTEXT NOT NULL,
    private_encrypted LONGBLOB,
    created_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (set_id, kid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE tokens (
    kind VARCHAR(64) NOT NULL DEFAULT '',
    signature VARCHAR(512) NOT NULL,
    request_id VARCHAR(255) NOT NULL DEFAULT '',
    client_id VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    active TINYINT(1) NOT NULL DEFAULT 0,
    issued_at BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    data LONGTEXT NOT NULL,
    PRIMARY KEY (kind, signature)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
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
    data LONGTEXT NOT NULL,
    PRIMARY KEY (kind, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX flows_expires_idx ON flows (expires_at);
CREATE INDEX flows_session_idx ON flows (session_id);
CREATE TABLE login_sessions (
    id VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    authenticated_at BIGINT NOT NULL DEFAULT 0,
    remember TINYINT(1) NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    data LONGTEXT NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX login_sessions_subject_idx ON login_sessions (subject);
CREATE INDEX login_sessions_expires_idx ON login_sessions (expires_at);
CREATE TABLE consent_sessions (
    id VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    client_id VARCHAR(255) NOT NULL DEFAULT '',
    login_session_id VARCHAR(255) NOT NULL DEFAULT '',
    remember TINYINT(1) NOT NULL DEFAULT 0,
    granted_scope TEXT NOT NULL,
    granted_audience TEXT NOT NULL,
    handled_at BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    data LONGTEXT NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX consent_subject_client_idx ON consent_sessions (subject, client_id);
CREATE INDEX consent_login_session_idx ON consent_sessions (login_session_id);
CREATE INDEX consent_expires_idx ON consent_sessions (expires_at);
CREATE TABLE trusted_issuers (
    id VARCHAR(255) NOT NULL DEFAULT '',
    issuer VARCHAR(255) NOT NULL DEFAULT '',
    subject VARCHAR(255) NOT NULL DEFAULT '',
    allow_any_subject TINYINT(1) NOT NULL DEFAULT 0,
    scope TEXT NOT NULL,
    key_set VARCHAR(255) NOT NULL DEFAULT '',
    key_id VARCHAR(255) NOT NULL DEFAULT '',
    public_key LONGTEXT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    CONSTRAINT trusted_issuers_key_uq UNIQUE (issuer, subject, key_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX trusted_issuers_find_idx ON trusted_issuers (issuer, subject);
CREATE TABLE nonces (
    nonce_key VARCHAR(512) NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (nonce_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
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
