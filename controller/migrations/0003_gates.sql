-- Access-control gates (门禁) of the evaluation zone: the registry, expert draws per project,
-- the events the gates sync, and the outbox for the provincial expert library (门禁信息对接).

-- A gate is its API token (role gate): one credential per gate, revoked with the token.
CREATE TABLE gates (
    token_id       INTEGER PRIMARY KEY REFERENCES api_tokens(id),
    name           TEXT NOT NULL UNIQUE,
    location       TEXT NOT NULL DEFAULT '',
    registered_at  TEXT NOT NULL,
    last_seen_at   TEXT,
    -- The highest sequence stored; the next accepted event is last_sequence + 1.
    last_sequence  INTEGER NOT NULL DEFAULT 0,
    last_event_at  TEXT,
    last_event_kind TEXT,
    queue_depth    INTEGER NOT NULL DEFAULT 0,
    -- The id of the gate's current event log; a re-installed gate starts a new log at 1.
    log_id         TEXT
);

-- Projects evaluated behind a gate: its list carries their drawn experts.
CREATE TABLE gate_projects (
    gate_id     INTEGER NOT NULL REFERENCES gates(token_id),
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    PRIMARY KEY (gate_id, project_id)
);

-- Experts drawn (专家抽取) for a project and their time window. The full ID number is kept:
-- gates compare it with the card; the API masks it for everyone else.
CREATE TABLE expert_draws (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id),
    id_number     TEXT NOT NULL,
    name          TEXT NOT NULL,
    window_start  TEXT NOT NULL,
    window_end    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (project_id, id_number, window_start)
);
CREATE INDEX expert_draws_by_window ON expert_draws (window_end);

-- Events as the gates recorded them; (gate, log, sequence) is the idempotency key.
CREATE TABLE gate_events (
    id             INTEGER PRIMARY KEY,
    gate_id        INTEGER NOT NULL REFERENCES gates(token_id),
    log_id         TEXT NOT NULL,
    sequence       INTEGER NOT NULL,
    at             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    id_number      TEXT,
    name           TEXT,
    allowed        INTEGER,
    reason         TEXT,
    project_number TEXT,
    detail         TEXT,
    decision_micros INTEGER,
    snapshot       BLOB,
    received_at    TEXT NOT NULL,
    UNIQUE (gate_id, log_id, sequence)
);
CREATE INDEX gate_events_by_project ON gate_events (project_number);

-- Identity events waiting for the provincial expert library; written in the same transaction
-- as the event, so none is lost or sent twice by construction (sent_at marks delivery).
CREATE TABLE expert_library_outbox (
    id          INTEGER PRIMARY KEY,
    event_id    INTEGER NOT NULL UNIQUE REFERENCES gate_events(id),
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
);
