//! The store suite: the same tests against every backend of the `Store` trait, through its
//! public API — sled always, PostgreSQL when it is installed (`#[ignore]`d under a plain
//! `cargo test`; `.ci/run` installs PostgreSQL and runs them with `--ignored`, where a missing
//! server fails them). What only one backend has (sled's journal and group flushes, its
//! on-disk layout) is tested beside that backend, in src/store/.

mod backends;
mod migrate;
mod pg_only;
mod records;
mod suite;

/// Each named test of `suite`, once per backend.
macro_rules! on_every_backend {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sled {
            $(
                #[test]
                fn $test() {
                    super::suite::$module::$test(&super::backends::Sled::new());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                #[ignore = "needs PostgreSQL; .ci/run installs it"]
                fn $test() {
                    super::suite::$module::$test(&super::backends::Postgres::new());
                }
            )*
        }
    };
}

on_every_backend!(
    commits::a_commit_round_trips_and_the_indexes_find_it,
    approvers::a_request_is_listed_under_the_approvers_of_its_current_stage_only,
    approvers::a_refused_write_leaves_the_approver_index_as_it_was,
    commits::a_later_write_moves_the_due_entry_and_a_finished_request_leaves_it,
    commits::a_grant_is_in_the_expiry_index_only_while_live,
    commits::expect_new_on_an_existing_record_conflicts_and_writes_nothing,
    commits::a_stale_or_missing_version_conflicts,
    commits::everything_committed_is_there_after_a_reopen,
    commits::campaigns_and_marks_round_trip,
    commits::warnings_and_reviews_are_found_by_when_they_are_due,
    commits::the_grant_tally_follows_every_write_and_ignores_refused_ones,
    commits::grants_read_by_id_together_come_in_the_order_asked_without_the_missing,
    outbox::duplicate_effect_keys_are_not_queued_twice,
    outbox::the_newest_effect_is_the_highest_seq_still_queued,
    outbox::effects_without_a_natural_key_are_all_queued,
    outbox::new_effects_are_due_from_the_time_of_the_change,
    outbox::effects_queued_before_a_restart_are_handed_out_after_it,
    outbox::complete_effect_removes_the_entry_and_applies_then,
    outbox::completing_an_effect_twice_conflicts_and_applies_nothing,
    outbox::a_failing_then_keeps_the_effect_queued,
    outbox::a_failed_effect_waits_until_its_next_attempt,
    outbox::the_effects_waiting_are_those_whose_next_attempt_is_later,
    outbox::entries_are_read_after_a_seq_in_order_due_or_not_until_they_leave,
    outbox::results_written_together_each_succeed_or_fail_alone,
    cards::cards_are_remembered_per_request_in_posting_order_and_once,
    cards::one_effects_cards_for_one_person_on_two_platforms_are_both_remembered,
    cards::a_delivery_is_first_only_once_until_it_is_forgotten,
    cards::a_delivery_is_recorded_by_the_commit_of_its_work_and_only_if_it_lands,
    cards::a_commit_for_a_delivery_already_recorded_is_refused_whole,
    concurrency::concurrent_read_modify_cas_loses_no_update,
    concurrency::only_one_of_many_writers_with_the_same_expected_version_succeeds,
    concurrency::concurrent_commits_keep_the_audit_chain_linear,
    concurrency::ids_handed_out_at_once_are_all_different_and_none_is_skipped,
    audit::the_audit_chain_of_many_commits_verifies,
    audit::audit_reads_from_a_seq_up_to_a_limit,
    audit::with_a_key_every_batch_is_checkpointed_and_the_chain_is_anchored_to_its_head,
    audit::a_store_reopened_with_its_key_continues_the_anchored_chain,
    backup::a_backup_restores_into_either_backend_and_holds_everything,
    portal::a_session_is_kept_until_ended_and_is_not_part_of_a_backup,
    portal::sessions_outlive_a_reopen,
    portal::a_persons_requests_and_grants_are_read_a_window_at_a_time_either_way,
    portal::the_requests_waiting_for_an_approver_are_read_a_window_at_a_time,
    portal::live_grants_are_read_a_window_at_a_time_by_id_or_by_their_end,
);
