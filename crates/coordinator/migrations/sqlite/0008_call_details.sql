-- Call records, second part (docs/calls.md): each participant's browser, operating system and
-- kind of device (parsed from their User-Agent when they join), their name in lower case (what
-- the history's customer filter searches), and the recordings made of a call.
-- Keep in step with the other backends' 0008.
ALTER TABLE call_participants ADD COLUMN browser VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE call_participants ADD COLUMN os VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE call_participants ADD COLUMN device VARCHAR(16) NOT NULL DEFAULT '';
ALTER TABLE call_participants ADD COLUMN name_fold VARCHAR(100) NOT NULL DEFAULT '';
CREATE TABLE call_recordings (
    call_id VARCHAR(64) NOT NULL,
    recording_id VARCHAR(128) NOT NULL,
    started_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, recording_id)
);
