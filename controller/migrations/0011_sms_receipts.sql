-- SMS delivery reports (短信回执, issue 9 part 6): what the handset's delivery report said about
-- an SMS the gateway accepted. The outbox row keeps the gateway's answer (state 'acked',
-- receipt_id = its message id); these columns add the handset's outcome.
ALTER TABLE outbox ADD COLUMN delivery_state TEXT;        -- DELIVRD, UNDELIV, EXPIRED, … (SMPP spelling)
ALTER TABLE outbox ADD COLUMN delivery_error TEXT;        -- the receipt's err code / provider's reason
ALTER TABLE outbox ADD COLUMN delivered_at TEXT;          -- DELIVRD only: when the handset got it
ALTER TABLE outbox ADD COLUMN delivery_reported_at TEXT;  -- when the reported state was reached
-- A failed SMS is resent only by an operator, as a NEW message (new idempotency key); this
-- points at it, and a message is resent at most once.
ALTER TABLE outbox ADD COLUMN resent_as INTEGER REFERENCES outbox(id);
CREATE INDEX outbox_receipt ON outbox (target, receipt_id);

-- Every receipt received, kept before it is acknowledged to the gateway. A receipt can come
-- before the submit_sm_resp it belongs to has been committed (the SMSC is fast, our write is
-- not); the worker applies the stored receipts of a message when it records the acceptance.
CREATE TABLE sms_receipts (
    id           INTEGER PRIMARY KEY,
    receipt_id   TEXT NOT NULL,
    stat         TEXT NOT NULL,
    error        TEXT,
    done_at      TEXT,
    received_at  TEXT NOT NULL,
    UNIQUE (receipt_id, stat)
);

-- SMS being submitted right now, committed before they leave: one still here at start-up was
-- interrupted (kill -9, power loss) with its outcome unknown, and becomes a dead letter
-- instead of being sent a second time.
CREATE TABLE sms_submits (
    outbox_id   INTEGER PRIMARY KEY REFERENCES outbox(id),
    started_at  TEXT NOT NULL
);
