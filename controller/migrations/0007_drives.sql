-- Drives as the vendors expose them: a state machine per drive, good/bad disc counters for the
-- drive's life, taking a failing drive out of service; every state change as an event (the
-- record of which drive burned what when); alerts for the operator.

CREATE TABLE drive_states (
    name             TEXT PRIMARY KEY,
    state            TEXT NOT NULL DEFAULT 'idle' CHECK (state IN ('idle', 'loading', 'recording',
                         'verifying', 'record_failed', 'verify_failed', 'complete', 'out_of_service')),
    -- The disc the state is about (recording, verifying, the last result).
    disc_id          INTEGER,
    good_discs       INTEGER NOT NULL DEFAULT 0,
    bad_discs        INTEGER NOT NULL DEFAULT 0,
    -- Bad discs since the last good one; reaching [burning] out_of_service_after takes the drive
    -- out of service.
    failures_in_row  INTEGER NOT NULL DEFAULT 0,
    -- Why the drive is out of service (NULL while in service).
    out_of_service_reason TEXT,
    updated_at       TEXT NOT NULL
);

CREATE TABLE drive_events (
    id       INTEGER PRIMARY KEY,
    drive    TEXT NOT NULL,
    state    TEXT NOT NULL,
    job_id   INTEGER,
    disc_id  INTEGER,
    detail   TEXT,
    at       TEXT NOT NULL
);
CREATE INDEX drive_events_by_drive ON drive_events (drive, id);

-- Things an operator must see and act on (a drive out of service, a jammed robot).
CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY,
    -- 'drive_out_of_service', 'autoloader'.
    kind         TEXT NOT NULL,
    -- The drive or robot concerned.
    subject      TEXT NOT NULL,
    message      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT
);
CREATE INDEX alerts_open ON alerts (resolved_at, id);
