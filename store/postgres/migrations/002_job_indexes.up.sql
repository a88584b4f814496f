-- Newest-first order kept per state group. A claim (to running) and an
-- outcome (from running) each rewrite the job's row, and a rewritten row
-- gets an entry in every index whose condition it meets: with one
-- created_at index over all states, both added one. Split at running, a
-- claim adds an entry to the small index of running jobs only, an outcome
-- to the index of the others only. Listing newest first merges the two;
-- rescue and put-back scan the running jobs through the second.
DROP INDEX skein_jobs_newest;
DROP INDEX skein_jobs_running;
CREATE INDEX skein_jobs_newest ON skein_jobs (created_at) WHERE state <> 'running';
CREATE INDEX skein_jobs_running ON skein_jobs (created_at) WHERE state = 'running';

-- Job ids made by a client in one process grow with time (version 7
-- uuids), so inserts append to the primary key's right edge, where a full
-- page splits 90/10 by default. Every claim and outcome then adds a new
-- version of the key next to the old one: on pages packed that full, each
-- needs a split or a cleanup pass. 70 leaves them room.
ALTER INDEX skein_jobs_pkey SET (fillfactor = 70);
