-- Evaluation video (issue 4): which NVR channel records each evaluation room of a project, and
-- the pulls of a time window from those channels. Times are RFC 3339 text.

-- A project's rooms and their cameras; replaced as a whole when the mapping is saved.
CREATE TABLE video_channels (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    room        TEXT NOT NULL,
    nvr         TEXT NOT NULL,
    channel     INTEGER NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    UNIQUE (project_id, nvr, channel)
);

-- One channel's pull. Room, NVR and channel are copied in, so a later change of the mapping
-- does not rewrite history. 'queued' and 'pulling' rows are redone after a restart.
CREATE TABLE video_pulls (
    id                 INTEGER PRIMARY KEY,
    project_id         INTEGER NOT NULL REFERENCES projects(id),
    room               TEXT NOT NULL,
    nvr                TEXT NOT NULL,
    channel            INTEGER NOT NULL,
    label              TEXT NOT NULL DEFAULT '',
    window_start       TEXT NOT NULL,
    window_end         TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('queued', 'pulling', 'done', 'failed')),
    media_received_ms  INTEGER NOT NULL DEFAULT 0,
    window_ms          INTEGER NOT NULL,
    first_frame        TEXT,
    last_frame         TEXT,
    -- JSON list of {"start": …, "end": …}, measured from the packets received.
    gaps               TEXT NOT NULL DEFAULT '[]',
    frames             INTEGER,
    bytes              INTEGER,
    codec              TEXT,
    -- The project source the video became, once done.
    rel_path           TEXT,
    error              TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX video_pulls_project ON video_pulls(project_id);

-- Evaluation recordings (远程异地评标: meeting and local recordings) uploaded in chunks, bound
-- to a project, room and expert seat. `received` counts the bytes flushed to the partial file;
-- a dropped connection resumes from there. Done uploads become project sources.
CREATE TABLE recording_uploads (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    room        TEXT NOT NULL,
    seat        TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    received    INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL CHECK (status IN ('open', 'done', 'failed')),
    rel_path    TEXT NOT NULL,
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
-- One live upload per package path; failed ones may be retried under the same name.
CREATE UNIQUE INDEX recording_uploads_path ON recording_uploads(project_id, rel_path)
    WHERE status != 'failed';
