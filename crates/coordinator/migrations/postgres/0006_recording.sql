-- Recordings: a node's recorder slots and the recordings it reported (HEARTBEAT), its web
-- address (where its recordings are listed and downloaded), whether a session must be
-- recorded, and whether a plan asked for it.
-- Keep in step with the other backends' 0006.
ALTER TABLE coord_nodes ADD COLUMN recording_slots BIGINT NOT NULL DEFAULT 0;
ALTER TABLE coord_nodes ADD COLUMN reported_recordings BIGINT NOT NULL DEFAULT 0;
ALTER TABLE coord_nodes ADD COLUMN public_url VARCHAR(512) NOT NULL DEFAULT '';
ALTER TABLE coord_sessions ADD COLUMN record BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plan_details ADD COLUMN record BIGINT NOT NULL DEFAULT 0;
