-- The HTTP targets whose messages are written by catalog triggers only while they are
-- configured (the online supervision platform, the finance bureau): the configuration of the
-- last start, written before the workers start. An appliance never connected to a platform
-- thus piles up no messages for it; the data of the time before a target was configured is
-- pushed by a manual extraction (POST /api/integrations/{target}/extractions).
CREATE TABLE integration_targets (
    target         TEXT PRIMARY KEY,
    configured_at  TEXT NOT NULL
);
