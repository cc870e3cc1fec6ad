//! The `JobStore` contract, run against every backend: SQLite in memory and in a file always,
//! PostgreSQL and MySQL/MariaDB when `NOSYNTASK_TEST_POSTGRES_URL` / `NOSYNTASK_TEST_MYSQL_URL`
//! name a server (each test gets its own fresh database there).

mod suite;

/// `$access`: what each test gets, `shared` (the store as the engine takes it) or `store` (the
/// `Store` itself, for its own methods such as completion hooks).
macro_rules! backend {
    ($module:ident, $backend:literal, $access:ident, [$($test:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(db) = nosyntask_store::testing::test_store($backend)
                        .await
                        .unwrap()
                    else {
                        return;
                    };
                    crate::suite::$test(db.$access().clone()).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

macro_rules! every_backend {
    ($access:ident, $($test:ident),* $(,)?) => {
        backend!(sqlite_memory, "sqlite", $access, [$($test),*]);
        backend!(sqlite_file, "sqlite-file", $access, [$($test),*]);
        backend!(postgres, "postgres", $access, [$($test),*]);
        backend!(mysql, "mysql", $access, [$($test),*]);
    };
}

/// Row locks: PostgreSQL and MySQL only (SQLite has one writer and no row locks).
mod row_locks {
    backend!(
        postgres,
        "postgres",
        store,
        [a_renewal_does_not_hold_its_chunk_for_a_locked_row]
    );
    backend!(
        mysql,
        "mysql",
        store,
        [a_renewal_does_not_hold_its_chunk_for_a_locked_row]
    );
}

mod store {
    every_backend!(
        store,
        hook_commits_with_the_result_at_every_kill_point,
        a_failing_hook_keeps_the_result_and_says_so,
        hook_sees_failures_and_cancellations_once,
        outbox_delivers_each_event_in_order_per_job,
    );
}

every_backend!(
    shared,
    attempt_history_survives_retries_losses_cancel_and_resume,
    job_versions_move_with_every_write,
    a_lapsed_lease_is_taken_back_by_its_live_runner,
    an_owner_lease_keeps_its_tasks_until_it_lapses,
    a_live_runner_takes_its_tasks_back_after_its_owner_lease_lapsed,
    tasks_claimed_without_an_owner_lease_lapse_on_their_own,
    lost_fences_names_claims_cancelled_resumed_finished_or_unknown,
    a_cancelled_task_keeps_its_live_owner_a_minute,
    a_resumed_task_fences_off_the_cancelled_attempt,
    resume_counts_toward_the_quota,
    admin_storms_never_strand_a_job,
    renewals_and_progress_cover_any_number_of_running_tasks,
    text_with_nul_characters_is_stored,
    database_time_is_the_databases_clock,
    create_and_get,
    many_jobs_read_as_each_does,
    idempotency_key_returns_the_same_job,
    concurrent_identical_starts_make_one_job,
    unique_key_holds_while_active,
    quota_limits_active_jobs,
    claims_in_ready_order_and_batches,
    later_steps_wait_for_earlier_ones,
    concurrent_claimers_take_each_task_once,
    concurrent_workers_run_each_step_once_in_order,
    stale_fences_change_nothing,
    completion_advances_then_completes_the_job,
    batch_completion_reports_each_fence,
    completion_records_the_tasks_usage,
    progress_is_written_for_held_claims,
    checkpoint_survives_a_lost_lease,
    retryable_failure_waits_for_retry_at,
    permanent_failure_fails_the_job,
    release_hands_back_without_an_attempt,
    renew_reports_lost_leases,
    expired_leases_are_requeued,
    cancel_pending_and_running_jobs,
    cancel_races_with_completion,
    resume_continues_from_the_first_unfinished_step,
    resume_respects_the_unique_key,
    consume_and_active_listing,
    list_filters_and_pages,
    list_finds_jobs_by_params_text,
    prune_deletes_old_terminal_jobs,
    prune_goes_on_past_a_full_batch,
    stats_count_tasks_and_jobs,
    task_activity_groups_in_flight_and_recent_tasks,
    model_series_buckets_finished_tasks_per_model,
    wait_for_work_wakes_on_create,
);
