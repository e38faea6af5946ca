-- Every book and movie records the user who created it; only that user (or an admin) changes or
-- deletes it. Rows from before this migration have no owner: only admins change them.
ALTER TABLE books ADD COLUMN owner_id BIGINT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE movies ADD COLUMN owner_id BIGINT REFERENCES users(id) ON DELETE SET NULL;
-- `user` or `admin`; granted by `api-service admin grant`, never through the API.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
