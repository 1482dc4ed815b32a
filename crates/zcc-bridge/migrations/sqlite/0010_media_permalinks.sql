-- Durable links to archived files (for systems of record, which keep links for years): a link's token is an HMAC
-- of the file and this generation, so bumping it revokes the file's durable link (one file, or all at once).
ALTER TABLE media_objects ADD COLUMN link_generation INTEGER NOT NULL DEFAULT 0;
