-- The catalog: trading projects, their source files, backup jobs, packages, volumes and copies.
-- Times are RFC 3339 text in China Standard Time.

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    number      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL,
    opening     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'registered',
    created_at  TEXT NOT NULL
);

CREATE TABLE source_files (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    rel_path    TEXT NOT NULL,
    origin      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    UNIQUE (project_id, rel_path)
);

-- A backup job; its package, volumes and discs hang off it.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    status       TEXT NOT NULL,
    step         TEXT NOT NULL,
    done_bytes   INTEGER NOT NULL DEFAULT 0,
    total_bytes  INTEGER NOT NULL DEFAULT 0,
    message      TEXT NOT NULL DEFAULT '',
    error        TEXT,
    -- The optical medium this job's discs are planned for, and the largest piece of a file
    -- that fits one of them (files above it are split into parts of this size).
    medium       TEXT NOT NULL,
    capacity     INTEGER NOT NULL,
    part_size    INTEGER NOT NULL,
    copies_optical INTEGER NOT NULL,
    copies_disk  INTEGER NOT NULL,
    package_uuid TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- The files of a job's archive package, hashed while they were collected.
CREATE TABLE package_files (
    id        INTEGER PRIMARY KEY,
    job_id    INTEGER NOT NULL REFERENCES jobs(id),
    rel_path  TEXT NOT NULL,
    size      INTEGER NOT NULL,
    sha256    TEXT NOT NULL,
    sm3       TEXT NOT NULL,
    kind      TEXT NOT NULL,
    UNIQUE (job_id, rel_path)
);

-- Parts of files larger than one disc, hashed in the same pass as the whole file.
CREATE TABLE file_parts (
    package_file_id INTEGER NOT NULL REFERENCES package_files(id),
    part_index      INTEGER NOT NULL,
    offset          INTEGER NOT NULL,
    length          INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    sm3             TEXT NOT NULL,
    PRIMARY KEY (package_file_id, part_index)
);

-- The disc set a package was planned into.
CREATE TABLE volumes (
    id             INTEGER PRIMARY KEY,
    job_id         INTEGER NOT NULL REFERENCES jobs(id),
    set_index      INTEGER NOT NULL,
    set_count      INTEGER NOT NULL,
    volume_id      TEXT NOT NULL,
    payload_bytes  INTEGER NOT NULL,
    -- JSON list of {"file": package_files.id, "part": null or part_index}.
    items          TEXT NOT NULL,
    UNIQUE (job_id, set_index)
);

-- Every physical copy ever attempted: discs of a set and hard-disk copies.
CREATE TABLE discs (
    id           INTEGER PRIMARY KEY,
    job_id       INTEGER NOT NULL REFERENCES jobs(id),
    kind         TEXT NOT NULL,
    set_index    INTEGER NOT NULL,
    set_count    INTEGER NOT NULL,
    copy_index   INTEGER NOT NULL,
    medium       TEXT NOT NULL,
    target       TEXT NOT NULL,
    location     TEXT NOT NULL,
    volume_id    TEXT NOT NULL,
    bytes        INTEGER NOT NULL DEFAULT 0,
    status       TEXT NOT NULL,
    error        TEXT,
    created_at   TEXT NOT NULL,
    verified_at  TEXT
);

-- A verified copy is never made twice: at most one verified disc per slot of the copy policy.
CREATE UNIQUE INDEX discs_one_verified_per_slot
    ON discs (job_id, kind, set_index, copy_index) WHERE status = 'verified';
CREATE INDEX discs_by_job ON discs (job_id);
CREATE INDEX jobs_by_project ON jobs (project_id);
