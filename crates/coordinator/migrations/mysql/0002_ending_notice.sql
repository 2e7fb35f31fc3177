-- A planned session's SESSION_ENDING notice: the slot end (ends_ms) it was last sent for, 0: none.
-- Keep in step with the other backends' 0002.
ALTER TABLE coord_sessions ADD COLUMN notice_ends_ms BIGINT NOT NULL DEFAULT 0;
