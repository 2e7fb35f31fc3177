-- Accounts (docs/accounts.md): users, login sessions, quotas, usage, login failures and
-- sign-ups per address. Keep in step with the other backends' 0003.
-- Quota numbers: -1 means unlimited. reject_reason: '' means none.
CREATE TABLE acc_users (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(254) NOT NULL,
    name VARCHAR(100) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    role VARCHAR(16) NOT NULL,
    status VARCHAR(16) NOT NULL,
    reject_reason VARCHAR(500) NOT NULL,
    time_zone VARCHAR(64) NOT NULL,
    created_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE UNIQUE INDEX acc_users_email ON acc_users (email);
CREATE INDEX acc_users_status ON acc_users (status, id);
-- Login sessions: only the SHA-256 (hex) of the token is stored.
CREATE TABLE acc_sessions (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX acc_sessions_user ON acc_sessions (user_id);
CREATE INDEX acc_sessions_expires ON acc_sessions (expires_ms);
-- Quota defaults per role set by an administrator (the settings' defaults apply without a row).
CREATE TABLE acc_role_quotas (
    role VARCHAR(16) NOT NULL PRIMARY KEY,
    sessions_per_period BIGINT NOT NULL,
    period_hours BIGINT NOT NULL,
    max_minutes BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- A user's own quota, overriding their role's.
CREATE TABLE acc_quota_overrides (
    user_id BIGINT NOT NULL PRIMARY KEY,
    sessions_per_period BIGINT NOT NULL,
    period_hours BIGINT NOT NULL,
    max_minutes BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- Sessions created (kind 'create') and planned (kind 'plan'), counted against quotas.
CREATE TABLE acc_usage (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    kind VARCHAR(8) NOT NULL,
    code VARCHAR(16) NOT NULL,
    minutes BIGINT NOT NULL,
    at_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX acc_usage_user ON acc_usage (user_id, at_ms);
-- Failed logins per e-mail (for the lock-out) and the lock-outs in force.
CREATE TABLE acc_login_failures (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(254) NOT NULL,
    at_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX acc_login_failures_email ON acc_login_failures (email, at_ms);
CREATE INDEX acc_login_failures_at ON acc_login_failures (at_ms);
CREATE TABLE acc_lockouts (
    email VARCHAR(254) NOT NULL PRIMARY KEY,
    until_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- Sign-ups per client address (for the hourly limit).
CREATE TABLE acc_signups (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    addr VARCHAR(64) NOT NULL,
    at_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX acc_signups_addr ON acc_signups (addr, at_ms);
CREATE INDEX acc_signups_at ON acc_signups (at_ms);
