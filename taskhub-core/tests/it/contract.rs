//! Runs every contract test on both engines.

/// `contract!(module::test_fn, …)` makes `sqlite_test_fn` and `postgres_test_fn` tests.
macro_rules! contract {
    ($($m:ident :: $t:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $t() -> anyhow::Result<()> {
                    crate::$m::$t(crate::common::Fx::new(crate::common::Engine::Sqlite).await?).await
                }
            )*
        }
        pub mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $t() -> anyhow::Result<()> {
                    crate::$m::$t(crate::common::Fx::new(crate::common::Engine::Postgres).await?).await
                }
            )*
        }
    };
}

contract!(
    auth::login_issues_tokens_and_refresh_rotates_them,
    auth::concurrent_refreshes_of_one_token_let_one_win,
    auth::logout_and_deactivation_take_effect_on_the_next_request,
    auth::failed_logins_back_off_without_locking_out_for_good,
    auth::expired_tokens_are_refused,
    tasks_rules::task_defaults_apply_on_create,
    tasks_rules::every_validation_bound_is_enforced_and_changes_nothing,
    tasks_rules::visibility_and_edit_rules_follow_each_role,
    tasks_rules::archived_tasks_are_hidden_by_default,
    tasks_rules::parent_task_must_be_visible_and_acyclic,
    tasks_rules::assignees_must_be_active_users,
    tasks_rules::filters_select_exactly_the_matching_tasks,
    tasks_rules::invalid_filter_values_are_rejected,
    tasks_rules::comments_follow_author_and_editor_rules,
    tasks_rules::templates_validate_defaults_and_instantiate,
    tasks_rules::tag_names_are_unique_case_insensitively,
    history_outbox::every_action_writes_exactly_one_history_row_and_event,
    history_outbox::a_request_that_changes_nothing_writes_nothing,
    history_outbox::outbox_envelopes_follow_the_contract,
    history_outbox::a_failure_half_way_rolls_everything_back,
    history_outbox::stale_versions_are_rejected,
    history_outbox::concurrent_updates_with_one_version_let_exactly_one_win,
    history_outbox::idempotency_records_replay_and_detect_reuse,
    history_outbox::idempotent_creates_happen_once_even_when_concurrent,
    relay::the_relay_publishes_every_row_once_in_order,
    relay::a_failing_bus_loses_nothing_and_a_lost_ack_means_a_resend,
    relay::two_relays_publish_each_row_once_through_one_leader,
    relay::the_relay_publishes_to_redis_streams_in_order,
    paging::pagination_walks_every_row_once_while_rows_are_inserted,
    paging::page_size_and_cursor_are_validated,
    teams_users::teams_follow_admin_and_member_rules,
    teams_users::deleting_a_team_keeps_its_tasks,
    teams_users::user_rules_hide_emails_and_guard_staff_actions,
    teams_users::usernames_and_emails_are_unique_case_insensitively,
    maintenance::the_overdue_scan_announces_each_overdue_spell_once,
    maintenance::the_cleanup_deletes_only_tasks_archived_long_ago,
    maintenance::a_daily_summary_is_claimed_at_most_once_a_day,
);
