//! The [`Tx`](super::Tx) implementation shared by both SQL engines, stamped out per engine by
//! `impl_tx!` so that the SQL is written once.

/// What a [`Tx`](super::Tx) runs its statements on: a transaction, or — for reads on an engine
/// whose statements each take their own snapshot anyway (PostgreSQL at READ COMMITTED) — a plain
/// pooled connection, which saves the BEGIN and ROLLBACK round trips.
pub(crate) enum Inner<DB: sqlx::Database> {
    /// A transaction: committed by `commit`, rolled back when dropped.
    Tx(sqlx::Transaction<'static, DB>),
    /// A connection in autocommit mode.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code, reason = "only PostgreSQL reads without a transaction"))]
    Conn(sqlx::pool::PoolConnection<DB>),
}

impl<DB: sqlx::Database> std::ops::Deref for Inner<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &Self::Target {
        match self {
            Inner::Tx(t) => t,
            Inner::Conn(c) => c,
        }
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for Inner<DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Inner::Tx(t) => &mut *t,
            Inner::Conn(c) => &mut *c,
        }
    }
}

/// Implements `Tx` for `$tx`, a wrapper of `sqlx::Transaction<'static, $db>`.
/// `$title` is the expression ordering titles in byte order on that engine; `$lock` the
/// clause that locks selected rows (SQLite needs none: its writers are serialized).
macro_rules! impl_tx {
    ($tx:ident, $db:ty, $title:expr, $lock:expr) => {
        /// A transaction on this engine.
        pub(crate) struct $tx {
            pub(crate) inner: $crate::store::sql_tx::Inner<$db>,
            /// The process's write turn (SQLite), released after commit or rollback.
            #[allow(dead_code, reason = "held for its drop")]
            pub(crate) writer: Option<tokio::sync::OwnedMutexGuard<()>>,
        }

        impl $tx {
            async fn load_tasks(&mut self, rows: Vec<TaskDbRow>) -> Result<Vec<Task>> {
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let ids: Vec<i64> = rows.iter().map(TaskDbRow::id).collect();
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT task_id, user_id, role, assigned_by, assigned_at FROM task_assignees WHERE task_id IN (",
                );
                let mut sep = qb.separated(", ");
                for id in &ids {
                    sep.push_bind(*id);
                }
                qb.push(") ORDER BY task_id, user_id");
                let assignees: Vec<AssigneeDbRow> = qb.build_query_as().fetch_all(&mut *self.inner).await?;
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT tt.task_id, g.name FROM task_tags tt JOIN tags g ON g.id = tt.tag_id WHERE tt.task_id IN (",
                );
                let mut sep = qb.separated(", ");
                for id in &ids {
                    sep.push_bind(*id);
                }
                qb.push(") ORDER BY tt.task_id, g.name_key");
                let tags: Vec<TagNameRow> = qb.build_query_as().fetch_all(&mut *self.inner).await?;
                assemble_tasks(rows, assignees, tags)
            }

            fn push_task_filters(qb: &mut QueryBuilder<$db>, f: &TaskFilter, vis: &Visibility) {
                qb.push(" WHERE 1 = 1");
                $crate::store::consume::push_visibility(qb, vis);
                match f.archived {
                    ArchivedFilter::Live => { qb.push(" AND t.is_archived = FALSE"); }
                    ArchivedFilter::Archived => { qb.push(" AND t.is_archived = TRUE"); }
                    ArchivedFilter::All => {}
                }
                if !f.statuses.is_empty() {
                    qb.push(" AND t.status IN (");
                    let mut sep = qb.separated(", ");
                    for s in &f.statuses {
                        sep.push_bind(s.as_str());
                    }
                    qb.push(")");
                }
                if !f.priorities.is_empty() {
                    qb.push(" AND t.priority IN (");
                    let mut sep = qb.separated(", ");
                    for p in &f.priorities {
                        sep.push_bind(p.rank());
                    }
                    qb.push(")");
                }
                if let Some(tag) = &f.tag {
                    qb.push(" AND EXISTS (SELECT 1 FROM task_tags ft JOIN tags fg ON fg.id = ft.tag_id WHERE ft.task_id = t.id AND fg.name_key = ")
                        .push_bind(tag.clone())
                        .push(")");
                }
                if let Some(a) = f.assignee {
                    qb.push(" AND EXISTS (SELECT 1 FROM task_assignees fa WHERE fa.task_id = t.id AND fa.user_id = ").push_bind(a).push(")");
                }
                if let Some(team) = f.team {
                    qb.push(" AND t.assigned_team = ").push_bind(team);
                }
                if let Some(c) = f.created_by {
                    qb.push(" AND t.created_by = ").push_bind(c);
                }
                match f.overdue {
                    Some(true) => {
                        qb.push(" AND (t.due_date < ").push_bind(f.now).push(" AND t.status <> 'done')");
                    }
                    Some(false) => {
                        qb.push(" AND NOT (t.due_date IS NOT NULL AND t.due_date < ").push_bind(f.now).push(" AND t.status <> 'done')");
                    }
                    None => {}
                }
                if let Some(b) = f.due_before {
                    qb.push(" AND t.due_date < ").push_bind(b);
                }
                if let Some(a) = f.due_after {
                    qb.push(" AND t.due_date >= ").push_bind(a);
                }
                if let Some(s) = &f.search {
                    let p = like_pattern(s);
                    qb.push(" AND (LOWER(t.title) LIKE ").push_bind(p.clone());
                    qb.push(" ESCAPE '\\' OR LOWER(t.description) LIKE ").push_bind(p).push(" ESCAPE '\\')");
                }
            }

            fn push_task_keyset(qb: &mut QueryBuilder<$db>, f: &TaskFilter, pos: &TaskPosition) {
                let (cmp, col) = (if f.desc { "<" } else { ">" }, order_column(f.order));
                if f.order == OrderField::DueDate {
                    match pos.t {
                        Some(v) => {
                            qb.push(" AND (t.due_date ").push(cmp).push(" ").push_bind(v);
                            qb.push(" OR (t.due_date = ").push_bind(v).push(" AND t.id ").push(cmp).push(" ").push_bind(pos.id);
                            qb.push(") OR t.due_date IS NULL)");
                        }
                        None => {
                            qb.push(" AND t.due_date IS NULL AND t.id ").push(cmp).push(" ").push_bind(pos.id);
                        }
                    }
                    return;
                }
                qb.push(" AND (").push(col).push(" ").push(cmp).push(" ");
                push_pos_value(qb, f.order, pos);
                qb.push(" OR (").push(col).push(" = ");
                push_pos_value(qb, f.order, pos);
                qb.push(" AND t.id ").push(cmp).push(" ").push_bind(pos.id).push("))");
            }
        }

        fn order_column(o: OrderField) -> &'static str {
            match o {
                OrderField::CreatedAt => "t.created_at",
                OrderField::UpdatedAt => "t.updated_at",
                OrderField::DueDate => "t.due_date",
                OrderField::Priority => "t.priority",
                OrderField::Title => $title,
            }
        }

        fn push_pos_value(qb: &mut QueryBuilder<$db>, o: OrderField, pos: &TaskPosition) {
            match o {
                OrderField::Priority => {
                    qb.push_bind(i16::try_from(pos.n.unwrap_or_default()).unwrap_or_default());
                }
                OrderField::Title => {
                    qb.push_bind(pos.s.clone().unwrap_or_default());
                }
                _ => {
                    qb.push_bind(pos.t.unwrap_or_default());
                }
            }
        }

        #[async_trait]
        impl Tx for $tx {
            async fn commit(self: Box<Self>) -> Result<()> {
                if let $crate::store::sql_tx::Inner::Tx(t) = self.inner {
                    t.commit().await?;
                }
                Ok(())
            }

            async fn insert_user(&mut self, u: &NewUser) -> Result<User> {
                let sql = format!(
                    "INSERT INTO users (username, username_key, email, email_key, password_hash, display_name, is_staff, is_active, date_joined) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8) RETURNING {USER_COLS}"
                );
                sqlx::query_as(AssertSqlSafe(sql))
                    .bind(&u.username).bind(&u.username_key).bind(&u.email).bind(&u.email_key)
                    .bind(&u.password_hash).bind(&u.display_name).bind(u.is_staff).bind(u.date_joined)
                    .fetch_one(&mut *self.inner).await.map_err(map_unique)
            }

            async fn get_user(&mut self, id: i64) -> Result<Option<User>> {
                let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.inner).await?)
            }

            async fn get_user_credentials(&mut self, username_key: &str) -> Result<Option<(User, String)>> {
                let sql = format!("SELECT {USER_COLS} FROM users WHERE username_key = $1");
                let user: Option<User> = sqlx::query_as(AssertSqlSafe(sql)).bind(username_key).fetch_optional(&mut *self.inner).await?;
                let Some(user) = user else { return Ok(None) };
                let hash = self.get_password_hash(user.id).await?.unwrap_or_default();
                Ok(Some((user, hash)))
            }

            async fn get_password_hash(&mut self, id: i64) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                    .bind(id).fetch_optional(&mut *self.inner).await?)
            }

            async fn update_user(&mut self, u: &User, password_hash: Option<&str>) -> Result<User> {
                let sql = format!(
                    "UPDATE users SET email = $2, email_key = $3, first_name = $4, last_name = $5, display_name = $6, \
                     is_staff = $7, is_active = $8, password_hash = COALESCE($9, password_hash) WHERE id = $1 RETURNING {USER_COLS}"
                );
                sqlx::query_as(AssertSqlSafe(sql))
                    .bind(u.id).bind(&u.email).bind(normalize_email(&u.email)).bind(&u.first_name).bind(&u.last_name)
                    .bind(&u.display_name).bind(u.is_staff).bind(u.is_active).bind(password_hash)
                    .fetch_one(&mut *self.inner).await.map_err(map_unique)
            }

            async fn list_users(&mut self, search: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<User>> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {USER_COLS} FROM users WHERE id > "));
                qb.push_bind(after.unwrap_or(0));
                push_user_search(&mut qb, search);
                qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                Ok(qb.build_query_as().fetch_all(&mut *self.inner).await?)
            }

            async fn count_users(&mut self, search: Option<&str>) -> Result<i64> {
                let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM users WHERE 1 = 1");
                push_user_search(&mut qb, search);
                Ok(qb.build_query_scalar().fetch_one(&mut *self.inner).await?)
            }

            async fn active_user_ids(&mut self, ids: &[i64]) -> Result<Vec<i64>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::<$db>::new("SELECT id FROM users WHERE is_active = TRUE AND id IN (");
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                qb.push(")");
                Ok(qb.build_query_scalar().fetch_all(&mut *self.inner).await?)
            }

            async fn insert_team(&mut self, name: &str, description: &str, admin: i64, now: DateTime<Utc>) -> Result<TeamRecord> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO teams (name, description, created_by, admin_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $3, $4, $4) RETURNING id",
                )
                .bind(name).bind(description).bind(admin).bind(now)
                .fetch_one(&mut *self.inner).await.map_err(map_unique)?;
                sqlx::query("INSERT INTO team_members (team_id, user_id, joined_at) VALUES ($1, $2, $3)")
                    .bind(id).bind(admin).bind(now).execute(&mut *self.inner).await.map_err(map_unique)?;
                self.get_team(id).await?.ok_or(Error::NotFound("team"))
            }

            async fn get_team(&mut self, id: i64) -> Result<Option<TeamRecord>> {
                let sql = format!("{TEAM_SELECT} WHERE t.id = $1");
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.inner).await?)
            }

            async fn update_team(&mut self, id: i64, name: &str, description: &str, expected: i64, now: DateTime<Utc>) -> Result<Option<TeamRecord>> {
                let done = sqlx::query(
                    "UPDATE teams SET name = $2, description = $3, updated_at = $4, version = version + 1 \
                     WHERE id = $1 AND version = $5",
                )
                .bind(id).bind(name).bind(description).bind(now).bind(expected)
                .execute(&mut *self.inner).await?;
                if done.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_team(id).await
            }

            async fn delete_team(&mut self, id: i64) -> Result<()> {
                sqlx::query("DELETE FROM teams WHERE id = $1").bind(id).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn list_teams(&mut self, member: Option<i64>, after: Option<i64>, limit: u32) -> Result<Vec<TeamRecord>> {
                let mut qb = QueryBuilder::<$db>::new(format!("{TEAM_SELECT} WHERE t.id > "));
                qb.push_bind(after.unwrap_or(0));
                if let Some(u) = member {
                    qb.push(" AND (t.created_by = ").push_bind(u);
                    qb.push(" OR EXISTS (SELECT 1 FROM team_members m2 WHERE m2.team_id = t.id AND m2.user_id = ").push_bind(u).push("))");
                }
                qb.push(" ORDER BY t.id LIMIT ").push_bind(i64::from(limit));
                Ok(qb.build_query_as().fetch_all(&mut *self.inner).await?)
            }

            async fn list_team_members(&mut self, team: i64, after: Option<i64>, limit: u32) -> Result<Vec<User>> {
                let sql = format!(
                    "SELECT {USER_COLS} FROM users WHERE id IN (SELECT user_id FROM team_members WHERE team_id = $1) \
                     AND id > $2 ORDER BY id LIMIT $3"
                );
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(team).bind(after.unwrap_or(0)).bind(i64::from(limit))
                    .fetch_all(&mut *self.inner).await?)
            }

            async fn add_team_members(&mut self, team: i64, users: &[i64], now: DateTime<Utc>) -> Result<Vec<i64>> {
                let mut added = Vec::new();
                for u in users {
                    let r = sqlx::query(
                        "INSERT INTO team_members (team_id, user_id, joined_at) VALUES ($1, $2, $3) ON CONFLICT (team_id, user_id) DO NOTHING",
                    )
                    .bind(team).bind(*u).bind(now).execute(&mut *self.inner).await.map_err(map_unique)?;
                    if r.rows_affected() > 0 {
                        added.push(*u);
                    }
                }
                Ok(added)
            }

            async fn remove_team_member(&mut self, team: i64, user: i64) -> Result<bool> {
                let r = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
                    .bind(team).bind(user).execute(&mut *self.inner).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn memberships(&mut self, user: i64) -> Result<Memberships> {
                // One round trip: the admin is always a member (the admin can neither leave nor be removed).
                let rows: Vec<(i64, bool)> = sqlx::query_as(
                    "SELECT m.team_id, t.admin_id = $1 FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.user_id = $1 ORDER BY m.team_id",
                )
                .bind(user).fetch_all(&mut *self.inner).await?;
                let admin_of = rows.iter().filter(|(_, admin)| *admin).map(|(id, _)| *id).collect();
                Ok(Memberships { member_of: rows.into_iter().map(|(id, _)| id).collect(), admin_of })
            }

            async fn touch_team(&mut self, team: i64, now: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE teams SET version = version + 1, updated_at = $2 WHERE id = $1")
                    .bind(team).bind(now).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn insert_task(&mut self, t: &TaskRow) -> Result<i64> {
                sqlx::query_scalar(
                    "INSERT INTO tasks (title, description, status, priority, due_date, estimated_hours, actual_hours, \
                     created_by, assigned_team, parent_task, metadata, is_archived, archived_at, completed_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
                )
                .bind(&t.title).bind(&t.description).bind(t.status).bind(t.priority).bind(t.due_date)
                .bind(t.estimated_hours).bind(t.actual_hours).bind(t.created_by).bind(t.assigned_team)
                .bind(t.parent_task).bind(Json(&t.metadata)).bind(t.is_archived).bind(t.archived_at)
                .bind(t.completed_at).bind(t.created_at).bind(t.updated_at)
                .fetch_one(&mut *self.inner).await.map_err(map_unique)
            }

            async fn get_task(&mut self, id: i64) -> Result<Option<Task>> {
                let sql = format!("SELECT {TASK_COLS} FROM tasks t WHERE t.id = $1");
                let row: Option<TaskDbRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.inner).await?;
                Ok(self.load_tasks(row.into_iter().collect()).await?.pop())
            }

            async fn lock_task(&mut self, id: i64) -> Result<Option<Task>> {
                let sql = format!("SELECT {TASK_COLS} FROM tasks t WHERE t.id = $1{}", $lock);
                let row: Option<TaskDbRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.inner).await?;
                Ok(self.load_tasks(row.into_iter().collect()).await?.pop())
            }

            async fn get_parent(&mut self, id: i64) -> Result<Option<Option<i64>>> {
                Ok(sqlx::query_scalar("SELECT parent_task FROM tasks WHERE id = $1")
                    .bind(id).fetch_optional(&mut *self.inner).await?)
            }

            async fn update_task(&mut self, id: i64, t: &TaskRow, expected: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE tasks SET title = $2, description = $3, status = $4, priority = $5, due_date = $6, \
                     estimated_hours = $7, actual_hours = $8, assigned_team = $9, parent_task = $10, metadata = $11, \
                     is_archived = $12, archived_at = $13, completed_at = $14, updated_at = $15, version = version + 1 \
                     WHERE id = $1 AND version = $16",
                )
                .bind(id).bind(&t.title).bind(&t.description).bind(t.status).bind(t.priority).bind(t.due_date)
                .bind(t.estimated_hours).bind(t.actual_hours).bind(t.assigned_team).bind(t.parent_task)
                .bind(Json(&t.metadata)).bind(t.is_archived).bind(t.archived_at).bind(t.completed_at)
                .bind(t.updated_at).bind(expected)
                .execute(&mut *self.inner).await.map_err(map_unique)?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_assignees(&mut self, task: i64, assignees: &[Assignee]) -> Result<()> {
                sqlx::query("DELETE FROM task_assignees WHERE task_id = $1").bind(task).execute(&mut *self.inner).await?;
                for a in assignees {
                    sqlx::query(
                        "INSERT INTO task_assignees (task_id, user_id, role, assigned_by, assigned_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(task).bind(a.user_id).bind(a.role.as_str()).bind(a.assigned_by).bind(a.assigned_at)
                    .execute(&mut *self.inner).await.map_err(map_unique)?;
                }
                Ok(())
            }

            async fn set_tags(&mut self, task: i64, names: &[String], now: DateTime<Utc>) -> Result<()> {
                sqlx::query("DELETE FROM task_tags WHERE task_id = $1").bind(task).execute(&mut *self.inner).await?;
                for name in names {
                    let key = name.to_lowercase();
                    sqlx::query("INSERT INTO tags (name, name_key, created_at) VALUES ($1, $2, $3) ON CONFLICT (name_key) DO NOTHING")
                        .bind(name).bind(&key).bind(now).execute(&mut *self.inner).await?;
                    sqlx::query("INSERT INTO task_tags (task_id, tag_id) SELECT $1, id FROM tags WHERE name_key = $2 ON CONFLICT DO NOTHING")
                        .bind(task).bind(&key).execute(&mut *self.inner).await?;
                }
                Ok(())
            }

            async fn list_tasks(&mut self, f: &TaskFilter, vis: &Visibility, after: Option<&TaskPosition>, limit: u32) -> Result<Vec<Task>> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {TASK_COLS} FROM tasks t"));
                Self::push_task_filters(&mut qb, f, vis);
                if let Some(pos) = after {
                    Self::push_task_keyset(&mut qb, f, pos);
                }
                let dir = if f.desc { "DESC" } else { "ASC" };
                let nulls = if f.order == OrderField::DueDate { " NULLS LAST" } else { "" };
                qb.push(format!(" ORDER BY {} {dir}{nulls}, t.id {dir} LIMIT ", order_column(f.order)));
                qb.push_bind(i64::from(limit));
                let rows: Vec<TaskDbRow> = qb.build_query_as().fetch_all(&mut *self.inner).await?;
                self.load_tasks(rows).await
            }

            async fn count_tasks(&mut self, f: &TaskFilter, vis: &Visibility) -> Result<i64> {
                let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM tasks t");
                Self::push_task_filters(&mut qb, f, vis);
                Ok(qb.build_query_scalar().fetch_one(&mut *self.inner).await?)
            }

            async fn list_tags(&mut self, after: Option<i64>, limit: u32) -> Result<Vec<Tag>> {
                let sql = format!("{TAG_SELECT} WHERE g.id > $1 ORDER BY g.id LIMIT $2");
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(after.unwrap_or(0)).bind(i64::from(limit)).fetch_all(&mut *self.inner).await?)
            }

            async fn get_tag(&mut self, id: i64) -> Result<Option<Tag>> {
                let sql = format!("{TAG_SELECT} WHERE g.id = $1");
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.inner).await?)
            }

            async fn insert_tag(&mut self, name: &str, color: Option<&str>, now: DateTime<Utc>) -> Result<Tag> {
                let id: i64 = sqlx::query_scalar("INSERT INTO tags (name, name_key, color, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
                    .bind(name).bind(name.to_lowercase()).bind(color).bind(now)
                    .fetch_one(&mut *self.inner).await.map_err(map_unique)?;
                self.get_tag(id).await?.ok_or(Error::NotFound("tag"))
            }

            async fn update_tag(&mut self, id: i64, name: &str, color: Option<&str>) -> Result<Option<Tag>> {
                let r = sqlx::query("UPDATE tags SET name = $2, name_key = $3, color = $4 WHERE id = $1")
                    .bind(id).bind(name).bind(name.to_lowercase()).bind(color)
                    .execute(&mut *self.inner).await.map_err(map_unique)?;
                if r.rows_affected() == 0 {
                    return Ok(None);
                }
                self.get_tag(id).await
            }

            async fn delete_tag(&mut self, id: i64) -> Result<bool> {
                let r = sqlx::query("DELETE FROM tags WHERE id = $1").bind(id).execute(&mut *self.inner).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn insert_template(&mut self, name: &str, description: &str, defaults: &TemplateDefaults, owner: i64, now: DateTime<Utc>) -> Result<Template> {
                let sql = format!(
                    "INSERT INTO task_templates (name, description, defaults, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) RETURNING {TEMPLATE_COLS}"
                );
                let row: TemplateDbRow = sqlx::query_as(AssertSqlSafe(sql)).bind(name).bind(description).bind(Json(defaults))
                    .bind(owner).bind(now).fetch_one(&mut *self.inner).await.map_err(map_unique)?;
                Ok(row.into())
            }

            async fn get_template(&mut self, id: i64) -> Result<Option<Template>> {
                let sql = format!("SELECT {TEMPLATE_COLS} FROM task_templates WHERE id = $1");
                let row: Option<TemplateDbRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *self.inner).await?;
                Ok(row.map(Into::into))
            }

            async fn update_template(&mut self, id: i64, name: &str, description: &str, defaults: &TemplateDefaults, expected: i64) -> Result<Option<Template>> {
                let sql = format!(
                    "UPDATE task_templates SET name = $2, description = $3, defaults = $4, version = version + 1 \
                     WHERE id = $1 AND version = $5 RETURNING {TEMPLATE_COLS}"
                );
                let row: Option<TemplateDbRow> = sqlx::query_as(AssertSqlSafe(sql)).bind(id).bind(name).bind(description)
                    .bind(Json(defaults)).bind(expected).fetch_optional(&mut *self.inner).await?;
                Ok(row.map(Into::into))
            }

            async fn delete_template(&mut self, id: i64) -> Result<()> {
                sqlx::query("DELETE FROM task_templates WHERE id = $1").bind(id).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn list_templates(&mut self, owner: Option<i64>, after: Option<i64>, limit: u32) -> Result<Vec<Template>> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {TEMPLATE_COLS} FROM task_templates WHERE id > "));
                qb.push_bind(after.unwrap_or(0));
                if let Some(o) = owner {
                    qb.push(" AND created_by = ").push_bind(o);
                }
                qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<TemplateDbRow> = qb.build_query_as().fetch_all(&mut *self.inner).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn insert_comment(&mut self, task: i64, author: i64, body: &str, now: DateTime<Utc>) -> Result<Comment> {
                let sql = format!(
                    "INSERT INTO comments (task_id, author, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING {COMMENT_COLS}"
                );
                sqlx::query_as(AssertSqlSafe(sql)).bind(task).bind(author).bind(body).bind(now)
                    .fetch_one(&mut *self.inner).await.map_err(map_unique)
            }

            async fn get_comment(&mut self, task: i64, id: i64) -> Result<Option<Comment>> {
                let sql = format!("SELECT {COMMENT_COLS} FROM comments WHERE id = $1 AND task_id = $2");
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).bind(task).fetch_optional(&mut *self.inner).await?)
            }

            async fn update_comment(&mut self, id: i64, body: &str, expected: i64, now: DateTime<Utc>) -> Result<Option<Comment>> {
                let sql = format!(
                    "UPDATE comments SET body = $2, updated_at = $3, version = version + 1 WHERE id = $1 AND version = $4 RETURNING {COMMENT_COLS}"
                );
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(id).bind(body).bind(now).bind(expected).fetch_optional(&mut *self.inner).await?)
            }

            async fn delete_comment(&mut self, id: i64) -> Result<()> {
                sqlx::query("DELETE FROM comments WHERE id = $1").bind(id).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn list_comments(&mut self, task: i64, after: Option<i64>, limit: u32) -> Result<Vec<Comment>> {
                let sql = format!("SELECT {COMMENT_COLS} FROM comments WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3");
                Ok(sqlx::query_as(AssertSqlSafe(sql)).bind(task).bind(after.unwrap_or(0)).bind(i64::from(limit)).fetch_all(&mut *self.inner).await?)
            }

            async fn insert_history(&mut self, h: &NewHistory) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO task_history (task_id, action, actor, changes, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(h.task_id).bind(h.action.as_str()).bind(h.actor).bind(Json(&h.changes)).bind(h.created_at)
                .fetch_one(&mut *self.inner).await?)
            }

            async fn list_history(&mut self, task: i64, before: Option<(DateTime<Utc>, i64)>, limit: u32) -> Result<Vec<HistoryEntry>> {
                let mut qb = QueryBuilder::<$db>::new("SELECT id, task_id, action, actor, changes, created_at FROM task_history WHERE task_id = ");
                qb.push_bind(task);
                if let Some((at, id)) = before {
                    qb.push(" AND (created_at < ").push_bind(at).push(" OR (created_at = ").push_bind(at);
                    qb.push(" AND id < ").push_bind(id).push("))");
                }
                qb.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<HistoryDbRow> = qb.build_query_as().fetch_all(&mut *self.inner).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn insert_outbox(&mut self, e: &EventEnvelope) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO outbox (event_id, topic, partition_key, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(e.id.to_string()).bind(e.topic()).bind(e.key()).bind(&e.event_type).bind(Json(e)).bind(e.occurred_at)
                .fetch_one(&mut *self.inner).await?)
            }

            async fn list_outbox(&mut self, after: i64, limit: u32) -> Result<Vec<OutboxRecord>> {
                let rows: Vec<OutboxDbRow> = sqlx::query_as(
                    "SELECT id, topic, partition_key, payload, published_at FROM outbox WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after).bind(i64::from(limit)).fetch_all(&mut *self.inner).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn insert_token_family(&mut self, family: &str, user: i64, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> Result<()> {
                sqlx::query("INSERT INTO token_families (family, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(family).bind(user).bind(now).bind(expires_at).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn insert_refresh_token(&mut self, jti: &str, access_jti: &str, family: &str, user: i64, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> Result<()> {
                sqlx::query("INSERT INTO refresh_tokens (jti, access_jti, family, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(jti).bind(access_jti).bind(family).bind(user).bind(now).bind(expires_at).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn family_of_access(&mut self, access_jti: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT family FROM refresh_tokens WHERE access_jti = $1")
                    .bind(access_jti).fetch_optional(&mut *self.inner).await?)
            }

            async fn use_refresh_token(&mut self, jti: &str, now: DateTime<Utc>) -> Result<RefreshUse> {
                let fresh: Option<(String, i64)> = sqlx::query_as(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE jti = $1 AND used_at IS NULL RETURNING family, user_id",
                )
                .bind(jti).bind(now).fetch_optional(&mut *self.inner).await?;
                if let Some((family, user_id)) = fresh {
                    return Ok(RefreshUse::Fresh { family, user_id });
                }
                let spent: Option<(String, i64)> = sqlx::query_as("SELECT family, user_id FROM refresh_tokens WHERE jti = $1")
                    .bind(jti).fetch_optional(&mut *self.inner).await?;
                Ok(match spent {
                    Some((family, user_id)) => RefreshUse::Reused { family, user_id },
                    None => RefreshUse::Unknown,
                })
            }

            async fn family_revoked(&mut self, family: &str) -> Result<Option<bool>> {
                let r: Option<Option<DateTime<Utc>>> = sqlx::query_scalar("SELECT revoked_at FROM token_families WHERE family = $1")
                    .bind(family).fetch_optional(&mut *self.inner).await?;
                Ok(r.map(|at| at.is_some()))
            }

            async fn revoke_family(&mut self, family: &str, now: DateTime<Utc>, reason: &str) -> Result<()> {
                sqlx::query("UPDATE token_families SET revoked_at = $2, revoked_reason = $3 WHERE family = $1 AND revoked_at IS NULL")
                    .bind(family).bind(now).bind(reason).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn revoke_user_families(&mut self, user: i64, now: DateTime<Utc>, reason: &str) -> Result<()> {
                sqlx::query("UPDATE token_families SET revoked_at = $2, revoked_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(user).bind(now).bind(reason).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn revoke_access_token(&mut self, jti: &str, user: i64, expires_at: DateTime<Utc>) -> Result<()> {
                sqlx::query("INSERT INTO revoked_access_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING")
                    .bind(jti).bind(user).bind(expires_at).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn auth_state(&mut self, user: i64, jti: &str) -> Result<Option<AuthState>> {
                Ok(sqlx::query_as(
                    "SELECT u.is_active, u.is_staff, EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = $2) AS revoked \
                     FROM users u WHERE u.id = $1",
                )
                .bind(user).bind(jti).fetch_optional(&mut *self.inner).await?)
            }

            async fn login_failures(&mut self, username_key: &str) -> Result<Option<(i32, Option<DateTime<Utc>>)>> {
                Ok(sqlx::query_as("SELECT failures, blocked_until FROM login_failures WHERE username_key = $1")
                    .bind(username_key).fetch_optional(&mut *self.inner).await?)
            }

            async fn record_login_failure(&mut self, username_key: &str, failures: i32, now: DateTime<Utc>, blocked_until: Option<DateTime<Utc>>) -> Result<()> {
                sqlx::query(
                    "INSERT INTO login_failures (username_key, failures, last_failure, blocked_until) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (username_key) DO UPDATE SET failures = $2, last_failure = $3, blocked_until = $4",
                )
                .bind(username_key).bind(failures).bind(now).bind(blocked_until).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn clear_login_failures(&mut self, username_key: &str) -> Result<()> {
                sqlx::query("DELETE FROM login_failures WHERE username_key = $1").bind(username_key).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn purge_expired_tokens(&mut self, now: DateTime<Utc>) -> Result<u64> {
                let mut n = 0;
                for sql in [
                    "DELETE FROM revoked_access_tokens WHERE expires_at < $1",
                    "DELETE FROM refresh_tokens WHERE expires_at < $1",
                    "DELETE FROM token_families WHERE expires_at < $1",
                ] {
                    n += sqlx::query(sql).bind(now).execute(&mut *self.inner).await?.rows_affected();
                }
                Ok(n)
            }

            async fn list_unpublished(&mut self, limit: u32) -> Result<Vec<OutboxRecord>> {
                let rows: Vec<OutboxDbRow> = sqlx::query_as(
                    "SELECT id, topic, partition_key, payload, published_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
                )
                .bind(i64::from(limit)).fetch_all(&mut *self.inner).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn mark_published(&mut self, ids: &[i64], now: DateTime<Utc>, lease: &str, holder: &str) -> Result<u64> {
                if ids.is_empty() {
                    return Ok(0);
                }
                // `seq` stamps publication order for the in-process bus: above every earlier
                // stamp, in id order within the batch (the relay publishes a batch in id order).
                let first = ids.iter().copied().min().unwrap_or_default();
                let mut qb = QueryBuilder::<$db>::new("UPDATE outbox SET published_at = ");
                qb.push_bind(now);
                qb.push(", seq = (SELECT COALESCE(MAX(seq), 0) FROM outbox) + 1 + id - ").push_bind(first);
                qb.push(" WHERE published_at IS NULL AND EXISTS (SELECT 1 FROM leases WHERE name = ").push_bind(lease.to_owned());
                qb.push(" AND holder = ").push_bind(holder.to_owned()).push(") AND id IN (");
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                qb.push(")");
                Ok(qb.build().execute(&mut *self.inner).await?.rows_affected())
            }

            async fn release_lease(&mut self, name: &str, holder: &str) -> Result<()> {
                sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name).bind(holder).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn acquire_lease(&mut self, name: &str, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool> {
                let r = sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = $3 \
                     WHERE leases.holder = $2 OR leases.expires_at < $4",
                )
                .bind(name).bind(holder).bind(until).bind(now).execute(&mut *self.inner).await?;
                Ok(r.rows_affected() == 1)
            }

            async fn claim_idempotency(&mut self, user: i64, key: &str, request_hash: &str, now: DateTime<Utc>) -> Result<Option<IdempotencyRecord>> {
                let r = sqlx::query(
                    "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, key) DO NOTHING",
                )
                .bind(user).bind(key).bind(request_hash).bind(now).execute(&mut *self.inner).await?;
                if r.rows_affected() == 1 {
                    return Ok(None);
                }
                let row: IdempotencyDbRow = sqlx::query_as(
                    "SELECT request_hash, response_status, response_body, created_at FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                )
                .bind(user).bind(key).fetch_one(&mut *self.inner).await?;
                Ok(Some(IdempotencyRecord {
                    request_hash: row.request_hash,
                    response: row.response_status.map(|s| (status_u16(s), row.response_body.map(|b| b.0).unwrap_or_default())),
                    created_at: row.created_at,
                }))
            }

            async fn complete_idempotency(&mut self, user: i64, key: &str, status: u16, body: &serde_json::Value) -> Result<()> {
                sqlx::query("UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE user_id = $1 AND key = $2")
                    .bind(user).bind(key).bind(i32::from(status)).bind(Json(body)).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn release_idempotency(&mut self, user: i64, key: &str) -> Result<()> {
                sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND response_status IS NULL")
                    .bind(user).bind(key).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn purge_idempotency(&mut self, before: DateTime<Utc>) -> Result<u64> {
                let r = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(before).execute(&mut *self.inner).await?;
                Ok(r.rows_affected())
            }
        }

        fn push_user_search(qb: &mut QueryBuilder<$db>, search: Option<&str>) {
            if let Some(s) = search {
                let p = like_pattern(&s.to_lowercase());
                qb.push(" AND (username_key LIKE ").push_bind(p.clone());
                qb.push(" ESCAPE '\\' OR LOWER(display_name) LIKE ").push_bind(p.clone());
                qb.push(" ESCAPE '\\' OR LOWER(first_name) LIKE ").push_bind(p.clone());
                qb.push(" ESCAPE '\\' OR LOWER(last_name) LIKE ").push_bind(p).push(" ESCAPE '\\')");
            }
        }
    };
}

pub(crate) use impl_tx;
