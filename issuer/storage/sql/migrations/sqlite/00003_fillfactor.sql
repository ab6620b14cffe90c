-- Gatehouse schema, version 3 (sqlite dialect): nothing to do here; on PostgreSQL this version leaves room on each
-- page for updated row versions (fillfactor), which sqlite has no use for.
-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
