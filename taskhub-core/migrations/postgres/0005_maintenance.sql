-- Maintenance jobs: the due date a task was last announced overdue for (so the hourly scan
-- announces each overdue spell once), and the daily summaries already sent (at most one a day).
ALTER TABLE tasks ADD COLUMN overdue_announced_for TIMESTAMPTZ;
CREATE INDEX tasks_open_due ON tasks (due_date) WHERE is_archived = FALSE AND status <> 'done';

CREATE TABLE daily_summaries (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day     DATE NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, day)
);
