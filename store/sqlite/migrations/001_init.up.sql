-- Jobs. Times are Unix microseconds (UTC); JSON columns are text.
CREATE TABLE skein_jobs (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    queue           TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    args            TEXT NOT NULL DEFAULT '{}',
    metadata        TEXT NOT NULL DEFAULT '{}',
    state           TEXT NOT NULL CHECK (state IN ('scheduled', 'available', 'running', 'retryable', 'completed', 'cancelled', 'discarded')),
    attempt         INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    timeout_us      INTEGER NOT NULL DEFAULT 0,
    scheduled_at    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    attempted_at    INTEGER,
    finalized_at    INTEGER,
    attempted_by    TEXT,
    attempted_agent TEXT,
    workflow_id     TEXT NOT NULL DEFAULT '',
    task_id         TEXT NOT NULL DEFAULT '',
    slot            INTEGER NOT NULL DEFAULT 0,
    unique_key      TEXT,
    errors          TEXT NOT NULL DEFAULT '[]',
    result          TEXT
) STRICT;

-- Claim order among claimable jobs: for claims from one queue, and for
-- claims from several or all queues.
CREATE INDEX skein_jobs_claim ON skein_jobs (queue, priority, scheduled_at)
    WHERE state IN ('available', 'scheduled', 'retryable');
CREATE INDEX skein_jobs_claim_any ON skein_jobs (priority, scheduled_at)
    WHERE state IN ('available', 'scheduled', 'retryable');

-- At most one pending job per unique key.
CREATE UNIQUE INDEX skein_jobs_unique_key ON skein_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retryable');

CREATE INDEX skein_jobs_newest ON skein_jobs (created_at);
-- A workflow's jobs are found through the primary key: their ids start with
-- "<workflow_id>_".
CREATE INDEX skein_jobs_running ON skein_jobs (attempted_by) WHERE state = 'running';
CREATE INDEX skein_jobs_finalized ON skein_jobs (state, finalized_at) WHERE finalized_at IS NOT NULL;

-- Dispatchers: one per process.
CREATE TABLE skein_dispatchers (
    id           TEXT PRIMARY KEY NOT NULL,
    host         TEXT NOT NULL DEFAULT '',
    pid          INTEGER NOT NULL DEFAULT 0,
    agents       TEXT NOT NULL DEFAULT '[]',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    dead_at      INTEGER,
    dead_by      TEXT
) STRICT;
