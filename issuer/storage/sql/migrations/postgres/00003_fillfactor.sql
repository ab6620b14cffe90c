-- Gatehouse schema, version 3 (postgres dialect): room on each page for the updated version of a row. Flows are
-- updated at every step and codes and refresh tokens when used; an update that changes no indexed column is HOT
-- (no index entry written) only when the new row version fits on the same page, which a full page never allows.
-- +goose Up
ALTER TABLE flows SET (fillfactor = 70);
ALTER TABLE tokens SET (fillfactor = 85);
ALTER TABLE login_sessions SET (fillfactor = 85);

-- +goose Down
ALTER TABLE flows RESET (fillfactor);
ALTER TABLE tokens RESET (fillfactor);
ALTER TABLE login_sessions RESET (fillfactor);
