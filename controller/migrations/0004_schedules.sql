-- Job priority and ageing admission, schedules and their runs, batch imports, shelf locations of
-- copies and their re-inspections (DA/T 38-style periodic re-reads).

-- 0 (lowest) … 9 (highest), 5 by default. Admission orders queued jobs by effective priority:
-- priority + one step per `[jobs] ageing_minutes` waited, so a low-priority job is never starved.
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;
-- Why the job exists: 'manual' (一键备份), 'schedule', 'batch' (spreadsheet import) or 'reburn'
-- (a re-inspection found a bad copy).
ALTER TABLE jobs ADD COLUMN origin TEXT NOT NULL DEFAULT 'manual';
-- The schedule run that made the job; a run makes at most one job per project, so a run that a
-- crash interrupted can be finished without making a second job.
ALTER TABLE jobs ADD COLUMN schedule_run_id INTEGER REFERENCES schedule_runs(id);
CREATE UNIQUE INDEX jobs_one_per_run_and_project
    ON jobs (schedule_run_id, project_id) WHERE schedule_run_id IS NOT NULL;
CREATE INDEX jobs_by_status ON jobs (status);

-- A schedule: when (rule, Asia/Shanghai wall time) and what (selection). Schedules are never
-- deleted, only marked, so their runs and the jobs those made keep their history.
CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    -- 'immediate', 'daily', 'weekly' or 'monthly'.
    rule         TEXT NOT NULL,
    -- Minutes after midnight, China Standard Time.
    at_minute    INTEGER NOT NULL DEFAULT 0,
    -- Weekly: 1 = Monday … 7 = Sunday.
    weekday      INTEGER,
    -- Monthly: 1 … 31; a day a month lacks means that month's last day.
    month_day    INTEGER,
    -- 'since_last_run', 'category' or 'list'.
    selection    TEXT NOT NULL,
    category     TEXT,
    -- JSON list of project numbers, for 'list'.
    numbers      TEXT NOT NULL DEFAULT '[]',
    priority     INTEGER NOT NULL DEFAULT 5,
    enabled      INTEGER NOT NULL DEFAULT 1,
    -- Fire instants at or before this are not due (the rule was set or changed then).
    rule_since   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    deleted_at   TEXT
);

-- One row per fire instant: the unique key is what makes a crash never fire a run twice; a row
-- without finished_at is a run whose jobs are still to be made (redone at start-up).
CREATE TABLE schedule_runs (
    id           INTEGER PRIMARY KEY,
    schedule_id  INTEGER NOT NULL REFERENCES schedules(id),
    fire_at      TEXT NOT NULL,
    -- The selection window (window_start, fire_at] for 'since_last_run'.
    window_start TEXT NOT NULL,
    -- Due instants that passed while the appliance was off and were folded into this run.
    missed       INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    jobs_created INTEGER NOT NULL DEFAULT 0,
    -- JSON list of {"project", "job", "error"}: what the run did per selected project.
    outcome      TEXT NOT NULL DEFAULT '[]',
    UNIQUE (schedule_id, fire_at)
);

-- Rows of a batch import that are stored (project and sources, one transaction) but whose
-- backup job is not made yet: a crash between the two leaves a row here, and the scheduler's
-- tick at start-up makes the job.
CREATE TABLE batch_pending (
    project_id     INTEGER PRIMARY KEY REFERENCES projects(id),
    priority       INTEGER,
    copies_optical INTEGER,
    created_at     TEXT NOT NULL
);

-- Where a copy is kept: shelf / cabinet / box for discs, the cupboard of a disk.
ALTER TABLE discs ADD COLUMN shelf TEXT NOT NULL DEFAULT '';

-- Re-reads of kept copies. A row is written 'running' before the read starts, so a crash leaves
-- a trace that start-up marks 'interrupted'.
CREATE TABLE inspections (
    id            INTEGER PRIMARY KEY,
    disc_id       INTEGER NOT NULL REFERENCES discs(id),
    -- 'running', 'passed', 'failed' or 'interrupted'.
    result        TEXT NOT NULL,
    -- Problems found (missing, changed, unreadable files).
    problems      INTEGER NOT NULL DEFAULT 0,
    detail        TEXT NOT NULL DEFAULT '',
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    -- The migrate / re-burn job a failed re-read raised.
    reburn_job_id INTEGER REFERENCES jobs(id)
);
CREATE INDEX inspections_by_disc ON inspections (disc_id, id);
-- One re-read of a copy at a time.
CREATE UNIQUE INDEX inspections_one_running ON inspections (disc_id) WHERE result = 'running';
