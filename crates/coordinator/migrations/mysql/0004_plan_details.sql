-- Who planned a session and for whom: one row per plan made through an account (the plan
-- itself stays in coord_plans). created_ms equals the plan's, so a row left behind by an
-- expired plan never attaches to a later plan that reuses its code.
-- Keep in step with the other backends' 0004.
CREATE TABLE plan_details (
    code VARCHAR(16) NOT NULL PRIMARY KEY,
    owner_id BIGINT NULL,
    tz VARCHAR(64) NOT NULL,
    customer_name VARCHAR(100) NULL,
    customer_phone VARCHAR(32) NULL,
    customer_email VARCHAR(254) NULL,
    note VARCHAR(2000) NULL,
    created_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX plan_details_owner ON plan_details (owner_id);
