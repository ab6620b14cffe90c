-- Gatehouse schema, version 2 (sqlite dialect): one index on tokens (client_id, request_id) serves both revoking a grant
-- (client and request ID) and revoking a client, instead of one index for each; every token insert updates one index
-- less (on SQLite, one WAL frame less per commit).
-- +goose Up
CREATE INDEX tokens_client_request_idx ON tokens (client_id, request_id);
DROP INDEX tokens_request_idx;
DROP INDEX tokens_client_idx;

-- +goose Down
CREATE INDEX tokens_request_idx ON tokens (request_id);
CREATE INDEX tokens_client_idx ON tokens (client_id);
DROP INDEX tokens_client_request_idx;
