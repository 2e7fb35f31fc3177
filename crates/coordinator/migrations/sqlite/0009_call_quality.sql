-- Call records, third part (docs/calls.md): each participant's connection quality every few
-- seconds, as their browser measured it (`stats`) and as the server saw it.
-- Keep in step with the other backends' 0009.
CREATE TABLE call_quality (
    call_id VARCHAR(64) NOT NULL,
    participant_id VARCHAR(64) NOT NULL,
    source VARCHAR(8) NOT NULL,
    at_ms BIGINT NOT NULL,
    out_kbps REAL NULL,
    in_kbps REAL NULL,
    loss_pct REAL NULL,
    jitter_ms REAL NULL,
    rtt_ms REAL NULL,
    fps_out REAL NULL,
    fps_in REAL NULL,
    width BIGINT NULL,
    height BIGINT NULL,
    limitation VARCHAR(16) NULL,
    PRIMARY KEY (call_id, participant_id, source, at_ms)
);
