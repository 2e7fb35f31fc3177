-- Call records (docs/calls.md): every call, who took part (each join and leave) and its chat,
-- written as the call goes. A call whose server died is closed when that server comes back.
-- Keep in step with the other backends' 0007.
CREATE TABLE call_records (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    code VARCHAR(16) NOT NULL,
    rc_name VARCHAR(64) NOT NULL,
    node_name VARCHAR(64) NOT NULL,
    owner_id BIGINT NULL,
    started_ms BIGINT NOT NULL,
    ended_ms BIGINT NULL,
    end_reason VARCHAR(32) NULL,
    last_event_ms BIGINT NOT NULL
);
CREATE INDEX call_records_started ON call_records (started_ms);
CREATE INDEX call_records_owner ON call_records (owner_id, started_ms);
CREATE INDEX call_records_node ON call_records (node_name, ended_ms);
CREATE TABLE call_participants (
    call_id VARCHAR(64) NOT NULL,
    participant_id VARCHAR(64) NOT NULL,
    name VARCHAR(100) NOT NULL,
    role VARCHAR(16) NOT NULL,
    account_id BIGINT NULL,
    user_agent VARCHAR(512) NOT NULL,
    first_joined_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id, participant_id)
);
CREATE TABLE call_presence (
    call_id VARCHAR(64) NOT NULL,
    participant_id VARCHAR(64) NOT NULL,
    joined_ms BIGINT NOT NULL,
    left_ms BIGINT NULL,
    PRIMARY KEY (call_id, participant_id, joined_ms)
);
CREATE TABLE call_chat (
    call_id VARCHAR(64) NOT NULL,
    seq BIGINT NOT NULL,
    participant_id VARCHAR(64) NOT NULL,
    sent_ms BIGINT NOT NULL,
    body VARCHAR(4000) NOT NULL,
    PRIMARY KEY (call_id, seq)
);
