-- Orbita coordinator registry (MySQL / MariaDB). Keep in step with ../sqlite and ../postgres.
-- Binary collation makes names compare as on SQLite and PostgreSQL (case-sensitive); the two
-- TEXT columns are never compared and keep a text collation (sqlx reads _bin TEXT as BLOB).
CREATE TABLE coord_nodes (
    name VARCHAR(128) NOT NULL PRIMARY KEY,
    ip VARCHAR(255) NOT NULL,
    port VARCHAR(16) NOT NULL,
    max_sessions BIGINT NOT NULL,
    status VARCHAR(8) NOT NULL,
    from_file BIGINT NOT NULL,
    file_pos BIGINT NOT NULL,
    link_owner VARCHAR(64) NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    reported_sessions BIGINT NOT NULL,
    reported_participants BIGINT NOT NULL,
    cpu_permille BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE coord_apps (
    node_name VARCHAR(128) NOT NULL,
    rc_name VARCHAR(128) NOT NULL,
    info TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    from_file BIGINT NOT NULL,
    file_pos BIGINT NOT NULL,
    PRIMARY KEY (node_name, rc_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX coord_apps_rc ON coord_apps (rc_name);
CREATE TABLE coord_codes (
    code VARCHAR(16) NOT NULL PRIMARY KEY,
    created_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE coord_sessions (
    code VARCHAR(16) NOT NULL PRIMARY KEY,
    rc_name VARCHAR(128) NOT NULL,
    node_name VARCHAR(128) NOT NULL,
    state VARCHAR(16) NOT NULL,
    creator VARCHAR(64) NOT NULL,
    creator_coordinator VARCHAR(64) NOT NULL,
    ip VARCHAR(255) NOT NULL,
    port VARCHAR(16) NOT NULL,
    created_ms BIGINT NOT NULL,
    last_activity_ms BIGINT NOT NULL,
    ends_ms BIGINT NOT NULL,
    from_plan BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX coord_sessions_node ON coord_sessions (node_name);
CREATE TABLE coord_plans (
    code VARCHAR(16) NOT NULL PRIMARY KEY,
    rc_name VARCHAR(128) NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    planned_by VARCHAR(64) NOT NULL,
    created_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE coord_participants (
    code VARCHAR(16) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    coordinator_id VARCHAR(64) NOT NULL,
    joined_ms BIGINT NOT NULL,
    PRIMARY KEY (code, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE coord_outbox (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    coordinator_id VARCHAR(64) NOT NULL,
    target_kind VARCHAR(8) NOT NULL,
    target VARCHAR(128) NOT NULL,
    body TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
    created_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX coord_outbox_owner ON coord_outbox (coordinator_id);
CREATE TABLE coord_lock (
    name VARCHAR(32) NOT NULL PRIMARY KEY,
    n BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO coord_lock (name, n) VALUES ('global', 0);
