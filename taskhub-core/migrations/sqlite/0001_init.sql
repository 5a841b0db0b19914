-- TaskHub schema, SQLite. Kept column-for-column equal to the PostgreSQL schema; unique
-- violations report "<table>.<column>", the names the PostgreSQL constraints carry.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT NOT NULL DEFAULT '',
    is_staff      BOOLEAN NOT NULL DEFAULT 0,
    is_active     BOOLEAN NOT NULL DEFAULT 1,
    date_joined   TEXT NOT NULL
);

CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_by  BIGINT REFERENCES users (id) ON DELETE SET NULL,
    admin_id    BIGINT NOT NULL REFERENCES users (id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE team_members (
    team_id   BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id, team_id);

CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('todo', 'in_progress', 'blocked', 'done')),
    priority        SMALLINT NOT NULL CHECK (priority BETWEEN 1 AND 4),
    due_date        TEXT,
    estimated_hours INTEGER CHECK (estimated_hours BETWEEN 0 AND 999999),
    actual_hours    INTEGER CHECK (actual_hours BETWEEN 0 AND 999999),
    created_by      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    assigned_team   BIGINT REFERENCES teams (id) ON DELETE SET NULL,
    parent_task     BIGINT REFERENCES tasks (id) ON DELETE SET NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    is_archived     BOOLEAN NOT NULL DEFAULT 0,
    archived_at     TEXT,
    completed_at    TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    version         BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX tasks_archived_created ON tasks (is_archived, created_at, id);
CREATE INDEX tasks_archived_updated ON tasks (is_archived, updated_at, id);
CREATE INDEX tasks_status ON tasks (status, created_at, id);
CREATE INDEX tasks_priority ON tasks (priority, id);
CREATE INDEX tasks_due_date ON tasks (due_date, id);
CREATE INDEX tasks_created_by ON tasks (created_by, created_at, id);
CREATE INDEX tasks_team ON tasks (assigned_team, created_at, id);
CREATE INDEX tasks_parent ON tasks (parent_task);
CREATE INDEX tasks_archived_at ON tasks (archived_at) WHERE is_archived = 1;

CREATE TABLE task_assignees (
    task_id     BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'collaborator')),
    assigned_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (task_id, user_id)
);
CREATE INDEX task_assignees_user ON task_assignees (user_id, task_id);

CREATE TABLE tags (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    color      TEXT,
    created_at TEXT NOT NULL
);

CREATE UNIQUE INDEX tags_name_key ON tags (name_key);

CREATE TABLE task_tags (
    task_id BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    tag_id  BIGINT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);
CREATE INDEX task_tags_tag ON task_tags (tag_id, task_id);

CREATE TABLE task_templates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    defaults    TEXT NOT NULL,
    created_by  BIGINT REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX task_templates_owner ON task_templates (created_by, id);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    author     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX comments_task ON comments (task_id, id);

CREATE TABLE task_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    action     TEXT NOT NULL,
    actor      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    changes    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX task_history_task ON task_history (task_id, created_at, id);

CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL,
    topic         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    published_at  TEXT
);
CREATE UNIQUE INDEX outbox_event_id ON outbox (event_id);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE idempotency_keys (
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
