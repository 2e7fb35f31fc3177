-- Call records, fourth part (docs/calls.md): the survey and the extra fields an administrator
-- defines (for every app, or one app), the agents' values of the fields and the customers'
-- answers, and the hash of the token each participant is given to answer the survey.
-- Keep in step with the other backends' 0010.
ALTER TABLE call_participants ADD COLUMN token_hash VARCHAR(64) NOT NULL DEFAULT '';
CREATE TABLE call_forms (
    scope VARCHAR(64) NOT NULL PRIMARY KEY,
    survey TEXT NOT NULL,
    fields TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE TABLE call_field_values (
    call_id VARCHAR(64) NOT NULL,
    field_id VARCHAR(32) NOT NULL,
    value VARCHAR(2000) NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by BIGINT NOT NULL,
    PRIMARY KEY (call_id, field_id)
);
CREATE TABLE call_survey_answers (
    call_id VARCHAR(64) NOT NULL,
    participant_id VARCHAR(64) NOT NULL,
    question_id VARCHAR(32) NOT NULL,
    value VARCHAR(2000) NOT NULL,
    rating BIGINT NULL,
    answered_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, participant_id, question_id)
);
