-- Gatehouse schema, version 4 (sqlite dialect): the revocation event log streamed to the gateways
-- (docs/revocation-events.md). revocation_position is one row, the last position given: the transaction that records
-- an event updates it (last, to hold its lock briefly), which serialises event writers, so positions increase in commit order without gaps.
-- +goose Up
CREATE TABLE revocation_position (
    id INTEGER NOT NULL,
    position BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id)
);
INSERT INTO revocation_position (id, position) VALUES (1, 0);
CREATE TABLE revocation_events (
    position BIGINT NOT NULL,
    kind VARCHAR(64) NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL DEFAULT 0,
    until_at BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (position)
);
CREATE INDEX revocation_events_created_idx ON revocation_events (created_at);

-- +goose Down
DROP TABLE revocation_events;
DROP TABLE revocation_position;
