-- Login limits (docs/security.md, "Accounts"): failed logins are counted per e-mail and
-- client address, and lock-outs are kept per (e-mail, address) and per address, so
-- strangers can no longer lock an account's owner out. Keep in step with the other
-- backends' 0005.
ALTER TABLE acc_login_failures ADD COLUMN addr VARCHAR(64) NOT NULL DEFAULT '';
CREATE INDEX acc_login_failures_addr ON acc_login_failures (addr, at_ms);
-- lock_key: 'ea <e-mail> <address>' (that address, that account) or 'a <address>'.
CREATE TABLE acc_login_locks (
    lock_key VARCHAR(330) NOT NULL PRIMARY KEY,
    until_ms BIGINT NOT NULL
);
DROP TABLE acc_lockouts;
