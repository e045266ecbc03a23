-- The delivery core of the platform integrations (issue 9): one transactional outbox for every
-- target system, the codes the platforms know a project by, the evaluation records the catalog
-- did not hold, and the archived daily reconciliation reports.

-- A message to a target system, written in the same transaction as the catalog change that
-- causes it. `payload` holds the facts in our own terms; the target's adapter maps them to the
-- wire format (and validates that against the schema) when it sends.
CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY,
    target            TEXT NOT NULL,
    exchange          TEXT NOT NULL,
    -- Sent in the Idempotency-Key header: the peer de-duplicates resends by it.
    idempotency_key   TEXT NOT NULL UNIQUE,
    payload           TEXT NOT NULL,
    schema_version    TEXT NOT NULL,
    project_number    TEXT,
    -- Filled when the adapter maps the message; the reconciliation report groups by them.
    unified_deal_code TEXT,
    bid_section_code  TEXT,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'acked', 'dead')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT NOT NULL,
    last_error        TEXT,
    -- Dead letters: 'ours' (our data violates the schema) or 'theirs' (attempts used up).
    fault             TEXT,
    receipt_id        TEXT,
    duplicate_replies INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    sent_at           TEXT,
    acked_at          TEXT
);
CREATE INDEX outbox_queue ON outbox (target, state, id);
CREATE INDEX outbox_by_day ON outbox (target, created_at);

-- The gates' identity events waiting in the old per-gate outbox move into the general one,
-- keyed by the gate event (the same key the gates module now writes).
INSERT INTO outbox (target, exchange, idempotency_key, payload, schema_version, project_number,
                    state, attempts, next_attempt_at, created_at, sent_at, acked_at)
SELECT 'expert_library', 'gate-identity', 'gate-event-' || o.event_id, o.payload, 'v1',
       json_extract(o.payload, '$.project_number'),
       CASE WHEN o.sent_at IS NULL THEN 'pending' ELSE 'acked' END,
       0, o.created_at, o.created_at, o.sent_at, o.sent_at
FROM expert_library_outbox o ORDER BY o.id;
DROP TABLE expert_library_outbox;

-- 统一交易标识码 and 标段（包）编号 of a project: the platforms identify projects by them.
CREATE TABLE project_trade_codes (
    project_id        INTEGER PRIMARY KEY REFERENCES projects(id),
    unified_deal_code TEXT NOT NULL,
    bid_section_code  TEXT NOT NULL,
    updated_by        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

-- Expert scores, candidate publicity, result announcements and expert credit records, as
-- recorded through the API (the JSON body, schemas::integration::EvaluationRecord).
CREATE TABLE evaluation_records (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    kind        TEXT NOT NULL,
    record      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- The daily reconciliation report per target; the same JSON is archived as a file.
CREATE TABLE reconciliation_reports (
    target        TEXT NOT NULL,
    day           TEXT NOT NULL,
    generated_at  TEXT NOT NULL,
    report        TEXT NOT NULL,
    file          TEXT NOT NULL,
    PRIMARY KEY (target, day)
);

-- Bidders registered for a project, for SMS notices (短信通知); a bidder may have no phone.
CREATE TABLE project_bidders (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    name        TEXT NOT NULL,
    phone       TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (project_id, name)
);

-- An SMS notice to a project's bidders; one outbox message per bidder with a phone.
CREATE TABLE sms_notices (
    id             INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects(id),
    kind           TEXT NOT NULL,
    deadline       TEXT,
    -- JSON list of the bidders without a phone number, who were not notified by SMS.
    without_phone  TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
