DROP TABLE IF EXISTS skein_dispatchers;
DROP TABLE IF EXISTS skein_jobs;
