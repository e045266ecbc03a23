-- The market-subject library (主体库, issue 9 part 3): the subject records we push to it, and the
-- cache of its answers to legal-person queries.

-- A fact about a market subject recorded through the API (the JSON body,
-- schemas::market_subject::SubjectRecord); its outbox message is written in the same
-- transaction. `subject_code` is the credit code, or a natural person's MASKED ID number (the
-- full number is only in `record`, which is what is sent).
CREATE TABLE subject_records (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    subject_code  TEXT NOT NULL,
    subject_name  TEXT NOT NULL,
    project_id    INTEGER REFERENCES projects(id),
    record        TEXT NOT NULL,
    message_id    INTEGER REFERENCES outbox(id),
    -- A blacklist revocation: the listing it revokes.
    revokes       INTEGER REFERENCES subject_records(id),
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
-- A listing is revoked at most once.
CREATE UNIQUE INDEX subject_records_one_revocation ON subject_records (revokes) WHERE revokes IS NOT NULL;
CREATE INDEX subject_records_by_kind ON subject_records (kind, id);

-- The last answer of the library to a query about a subject, in our own terms: served while
-- `expires_at` is ahead, and past it (marked stale, with its age) while the library is down.
CREATE TABLE subject_query_cache (
    query         TEXT NOT NULL,
    subject_code  TEXT NOT NULL,
    answer        TEXT NOT NULL,
    fetched_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    PRIMARY KEY (query, subject_code)
);
