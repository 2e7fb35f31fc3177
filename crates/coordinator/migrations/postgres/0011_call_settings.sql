-- Call records, fifth part (docs/calls.md): what administrators set for calls, handed to every
-- media server: the branding (kind 'branding'), the logo ('logo', base64 in JSON), the feature
-- switches per app ('features', scope: an app or 'default'), every consent text ever set
-- ('consent', scope: its SHA-256), and when anything last changed ('version'); and the
-- consent text each participant accepted before joining, and the labels of their camera and
-- microphone; and the history's order (newest first,
-- then by id) as an index, so a page of the list reads 50 rows instead of sorting every call.
-- Keep in step with the other backends' 0011.
ALTER TABLE call_participants ADD COLUMN consent_id VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE call_participants ADD COLUMN camera VARCHAR(200) NOT NULL DEFAULT '';
ALTER TABLE call_participants ADD COLUMN microphone VARCHAR(200) NOT NULL DEFAULT '';
CREATE TABLE call_settings (
    kind VARCHAR(16) NOT NULL,
    scope VARCHAR(64) NOT NULL,
    body TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, scope)
);
CREATE INDEX call_records_started_id ON call_records (started_ms, id);
