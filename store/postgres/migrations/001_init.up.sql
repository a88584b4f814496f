-- Jobs. args, metadata and result are json (kept as given, cheaper to insert
-- than jsonb); errors is jsonb, appended to. Indexed text columns use the "C"
-- collation: byte order, the same on every server, and fast.
CREATE TABLE skein_jobs (
    id              text COLLATE "C" PRIMARY KEY,
    kind            text COLLATE "C" NOT NULL,
    queue           text COLLATE "C" NOT NULL,
    priority        integer NOT NULL,
    args            json NOT NULL DEFAULT '{}',
    metadata        json NOT NULL DEFAULT '{}',
    state           text COLLATE "C" NOT NULL CHECK (state IN ('scheduled', 'available', 'running', 'retryable', 'completed', 'cancelled', 'discarded')),
    attempt         integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL CHECK (max_attempts >= 1),
    timeout_us      bigint NOT NULL DEFAULT 0,
    scheduled_at    timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    attempted_at    timestamptz,
    finalized_at    timestamptz,
    attempted_by    text COLLATE "C",
    attempted_agent text,
    workflow_id     text COLLATE "C" NOT NULL DEFAULT '',
    task_id         text NOT NULL DEFAULT '',
    slot            bigint NOT NULL DEFAULT 0,
    unique_key      text COLLATE "C",
    errors          jsonb NOT NULL DEFAULT '[]',
    result          json
);

-- Claim order among claimable jobs: for claims from one queue, and for
-- claims from several or all queues. Without deduplication: a batch's jobs
-- share one key, and a claimed job's entry can then be marked dead on its own
-- (a posting list is only marked dead once all its jobs are), so claims skip
-- the entries of jobs claimed before them without visiting the table.
CREATE INDEX skein_jobs_claim ON skein_jobs (queue, priority, scheduled_at)
    WITH (deduplicate_items = off)
    WHERE state IN ('available', 'scheduled', 'retryable');
CREATE INDEX skein_jobs_claim_any ON skein_jobs (priority, scheduled_at)
    WITH (deduplicate_items = off)
    WHERE state IN ('available', 'scheduled', 'retryable');

-- At most one pending job per unique key.
CREATE UNIQUE INDEX skein_jobs_unique_key ON skein_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retryable');

-- Listing newest first (ties on created_at are sorted by id after the scan).
CREATE INDEX skein_jobs_newest ON skein_jobs (created_at);
-- A workflow's jobs are found through the primary key: their ids start with
-- "<workflow_id>_".
CREATE INDEX skein_jobs_running ON skein_jobs (attempted_by) WHERE state = 'running';
CREATE INDEX skein_jobs_finalized ON skein_jobs (state, finalized_at) WHERE finalized_at IS NOT NULL;

-- Dispatchers: one per process.
CREATE TABLE skein_dispatchers (
    id           text COLLATE "C" PRIMARY KEY,
    host         text NOT NULL DEFAULT '',
    pid          integer NOT NULL DEFAULT 0,
    agents       jsonb NOT NULL DEFAULT '[]',
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    dead_at      timestamptz,
    dead_by      text
);
