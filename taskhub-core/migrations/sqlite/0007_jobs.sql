-- A mail handed to the `interactive` job queue carries the token of that hand-over: the job
-- sends only while the row still holds its token (a later hand-over, after the lease ran out,
-- makes an older queued copy of the job a no-op), and a job re-run after its worker died sends
-- the mail that was not recorded sent. `failed_at`: when the last try failed.
ALTER TABLE mail_outbox ADD COLUMN lock_token TEXT;
ALTER TABLE mail_outbox ADD COLUMN failed_at TEXT;

-- Failures of the jobs of the `long` queue, by the job storage's task id: the monitoring
-- view's errors (whatever the storage), and what a retry of a dead job pushes again (`args`).
-- A job that succeeds on a later try loses its row.
CREATE TABLE job_failures (
    task_id    TEXT PRIMARY KEY,
    queue      TEXT NOT NULL,
    job        TEXT NOT NULL,
    args       TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    error      TEXT NOT NULL,
    failed_at  TEXT NOT NULL,
    dead_at    TEXT,
    retried_at TEXT
);
CREATE INDEX job_failures_recent ON job_failures (failed_at) WHERE retried_at IS NULL;
