-- Disc faces sent to a printer (issue 3): which face went on which disc, where and when. A
-- reprint adds a row; a REJECT face carries the reason.
CREATE TABLE label_prints (
    id          INTEGER PRIMARY KEY,
    disc_id     INTEGER NOT NULL REFERENCES discs(id),
    template    TEXT NOT NULL,
    rejected    TEXT,
    printer     TEXT NOT NULL,
    reference   TEXT NOT NULL,
    printed_at  TEXT NOT NULL
);
CREATE INDEX label_prints_by_disc ON label_prints (disc_id);
