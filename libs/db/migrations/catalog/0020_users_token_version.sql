-- Access tokens carry the user's token_version; the guard compares it with this column (through a short
-- cache), so raising it (a password change) ends every token issued before. Signing keys stay the same.

ALTER TABLE users ADD COLUMN token_version INT UNSIGNED NOT NULL DEFAULT 0 AFTER role;
