ALTER INDEX skein_jobs_pkey RESET (fillfactor);
DROP INDEX skein_jobs_newest;
DROP INDEX skein_jobs_running;
CREATE INDEX skein_jobs_newest ON skein_jobs (created_at);
CREATE INDEX skein_jobs_running ON skein_jobs (attempted_by) WHERE state = 'running';
