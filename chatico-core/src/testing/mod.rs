//! The store conformance suite (feature `testing`).
//!
//! One set of tests that every [`Store`] backend runs: the in-memory store in this crate,
//! SQLite and Postgres in `chatico-store`. Each test is a plain async function taking
//! `&dyn Store`, so it needs no particular runtime;
//! [`store_conformance_tests!`](crate::store_conformance_tests) turns the whole list into
//! `#[test]`s of the invoking crate, the way matrix-rust-sdk's
//! `statestore_integration_tests!` does.
//!
//! ```ignore
//! // In a backend's tests (tokio as a dev-dependency):
//! async fn get_store() -> MyStore {
//!     MyStore::open_fresh().await.expect("open a fresh store")
//! }
//! chatico_core::store_conformance_tests!(get_store);
//! chatico_core::store_conformance_proptests!(get_store, cases = 16);
//! ```
//!
//! `get_store` is an `async fn` in the invoking crate returning a **fresh, empty** store:
//! anything implementing [`Store`], an `Arc<dyn Store>`, a `Box<dyn Store>` or an `Arc<S>`
//! (see [`AsDynStore`]). It is called once per test (once per case for property tests).
//!
//! The tests only use the `Store` port, never backend internals. Concurrency is exercised
//! with [`futures::future::join_all`] inside one test task, which puts many operations in
//! flight at once on any runtime (real parallelism for pooled SQL backends, interleaving at
//! await points for in-process ones).
//!
//! - [`fixtures`]: [`Fx`], helpers that build users, conversations and messages, and
//!   [`Fx::sync_all`], a sync pager that checks the paging contract on every page.
//! - the suite: [`users`], [`conversations`], [`messages`], [`sync`] — see the list in
//!   [`store_conformance_tests!`](crate::store_conformance_tests).
//! - [`props`]: proptest strategies and model-based checkers (seq gap-freeness under random
//!   interleavings of sends and retries, receipt monotonicity, sync completeness), reusable by
//!   every backend through [`store_conformance_proptests!`](crate::store_conformance_proptests).

use std::sync::Arc;

use crate::ports::Store;

pub mod conversations;
pub mod fixtures;
pub mod mentions_pins;
pub mod messages;
pub mod props;
pub mod push;
pub mod reactions;
pub mod search;
pub mod shared_state;
pub mod sync;
pub mod users;

pub use conversations::*;
pub use fixtures::{Fx, T0};
pub use mentions_pins::*;
pub use messages::*;
pub use push::*;
pub use reactions::*;
pub use search::*;
pub use sync::*;
pub use users::*;

/// Re-exported for the macros: the invoking crate need not depend on these itself.
#[doc(hidden)]
pub use futures::executor::block_on;
#[doc(hidden)]
pub use proptest as __proptest;

crate::__store_conformance_list!(names unused);

/// What `get_store()` may return: a store, or a shared/boxed one.
pub trait AsDynStore {
    /// The store behind `self`.
    fn as_dyn_store(&self) -> &dyn Store;
}

impl<S: Store> AsDynStore for S {
    fn as_dyn_store(&self) -> &dyn Store {
        self
    }
}

impl<S: Store> AsDynStore for Arc<S> {
    fn as_dyn_store(&self) -> &dyn Store {
        &**self
    }
}

impl AsDynStore for Arc<dyn Store> {
    fn as_dyn_store(&self) -> &dyn Store {
        &**self
    }
}

impl AsDynStore for Box<dyn Store> {
    fn as_dyn_store(&self) -> &dyn Store {
        &**self
    }
}

/// Expands to one test per conformance test, inside a module `store_conformance`, each
/// calling `get_store()` for a fresh store.
///
/// - `store_conformance_tests!(get_store)`: `#[tokio::test(flavor = "multi_thread",
///   worker_threads = 2)]` tests; the invoking crate needs `tokio` (a dev-dependency is
///   enough) with the `macros` and `rt-multi-thread` features.
/// - `store_conformance_tests!(get_store, executor = futures)`: plain `#[test]`s driven by
///   `futures::executor::block_on`, for stores that need no runtime (the in-memory store).
///
/// The list of tests lives in [`__store_conformance_list!`](crate::__store_conformance_list)
/// (one place).
#[macro_export]
macro_rules! store_conformance_tests {
    ($get_store:path) => {
        $crate::__store_conformance_list!(tokio $get_store);
    };
    ($get_store:path, executor = tokio) => {
        $crate::__store_conformance_list!(tokio $get_store);
    };
    ($get_store:path, executor = futures) => {
        $crate::__store_conformance_list!(futures $get_store);
    };
}

/// The conformance tests, by name (each is `chatico_core::testing::<name>`). Internal to
/// [`store_conformance_tests!`](crate::store_conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_list {
    ($mode:ident $get_store:path) => {
        $crate::__store_conformance_emit!($mode $get_store;
            // users, sessions, contacts, blocks, blobs
            get_or_create_user_is_idempotent
            concurrent_get_or_create_user_creates_one
            get_users_returns_existing_only
            search_users_by_name_and_phone_prefix
            search_users_pages_by_id
            update_profile_applies_patch_semantics
            set_last_seen_is_stored
            sessions_create_get_delete
            rotate_session_is_compare_and_swap
            concurrent_rotations_let_exactly_one_win
            contacts_add_remove_list_and_record_changes
            blocks_block_unblock_list_and_record_changes
            blobs_insert_get_delete
            // conversations and members
            create_group_stores_members_and_records_changes
            direct_conversation_is_unique_per_unordered_pair
            concurrent_direct_creation_yields_one
            add_members_sets_joined_seq_and_skips_existing
            remove_member_records_left_twice_and_stops_sync
            removed_member_rejoining_sees_from_new_join
            set_role_records_change
            set_archived_records_targeted_change_when_flag_changes
            update_conversation_patches_title_and_avatar
            list_members_orders_by_join_time_then_id
            // messages, history, receipts, conversation list
            insert_message_assigns_gap_free_seqs_from_one
            insert_message_into_missing_conversation_is_not_found
            insert_message_is_idempotent_on_sender_and_client_msg_id
            concurrent_duplicate_sends_are_stored_once
            concurrent_senders_get_unique_gap_free_seqs
            concurrent_mixed_sends_and_retries
            insert_message_moves_sender_watermarks
            history_pages_before_and_after
            history_excludes_hidden_and_seqs_before_join
            delete_for_everyone_tombstones_everywhere
            blob_shared_with_follows_membership_and_deletion
            receipts_are_monotonic_and_clamped
            read_receipt_implies_delivered
            receipts_for_non_member_are_not_found
            concurrent_receipts_keep_the_maximum
            list_conversations_orders_by_activity
            list_conversations_unread_members_and_last_message
            list_conversations_filters_archived_and_limits
            // sync
            latest_pos_starts_at_zero_and_moves_with_writes
            sync_pages_report_limited_and_next
            sync_replay_from_every_cursor_is_identical
            sync_conversation_changes_reach_members_from_their_join
            sync_targeted_changes_reach_only_the_target
            sync_message_changes_resolve_to_tombstones
            sync_positions_are_unique_across_users
            // push devices, mutes, badge
            push_devices_register_replace_and_move
            push_devices_go_with_sessions_and_invalid_tokens
            mutes_record_targeted_changes_and_list_members
            total_unread_sums_over_conversations
            audience_is_who_sync_shows_each_range_to
            // mentions and pins
            unread_mentions_follow_reads_deletes_and_hides
            pins_are_bounded_targeted_and_listed_first
            // edits and reactions
            edit_message_rewrites_content_in_place
            edit_media_caption_keeps_the_blob
            reactions_are_one_per_user_and_emoji_and_bounded
            concurrent_reactions_keep_the_bound
            // message search
            search_matches_every_term_as_whole_words
            search_covers_member_conversations_from_their_join
            search_skips_deleted_and_hidden_messages
            search_ranks_then_orders_by_recency_and_pages
        );
    };
}

/// Emits the tests. Internal to [`store_conformance_tests!`](crate::store_conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_emit {
    (tokio $get_store:path; $($name:ident)*) => {
        #[allow(unused_imports)]
        mod store_conformance {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = $get_store().await;
                    $crate::testing::$name($crate::testing::AsDynStore::as_dyn_store(&store)).await;
                }
            )*
        }
    };
    (names $get_store:path; $($name:ident)*) => {
        /// The names of the conformance tests, in the order the macro emits them.
        pub const CONFORMANCE_TESTS: &[&str] = &[$(stringify!($name)),*];
    };
    (futures $get_store:path; $($name:ident)*) => {
        #[allow(unused_imports)]
        mod store_conformance {
            use super::*;
            $(
                #[test]
                fn $name() {
                    $crate::testing::block_on(async {
                        let store = $get_store().await;
                        $crate::testing::$name($crate::testing::AsDynStore::as_dyn_store(&store)).await;
                    });
                }
            )*
        }
    };
}

/// Property tests over random scripts (see [`props`]), each case on a fresh store from
/// `get_store()`, inside a module `store_conformance_props`.
///
/// - `store_conformance_proptests!(get_store, cases = 32)`: each case runs on a tokio
///   multi-thread runtime built per test (the invoking crate needs `tokio` with
///   `rt-multi-thread`).
/// - `store_conformance_proptests!(get_store, cases = 32, executor = futures)`: cases run on
///   `futures::executor::block_on`.
///
/// Failures shrink to a minimal script, as proptest does.
#[macro_export]
macro_rules! store_conformance_proptests {
    ($get_store:path, cases = $cases:expr) => {
        $crate::__store_conformance_props!(tokio $get_store, $cases);
    };
    ($get_store:path, cases = $cases:expr, executor = tokio) => {
        $crate::__store_conformance_props!(tokio $get_store, $cases);
    };
    ($get_store:path, cases = $cases:expr, executor = futures) => {
        $crate::__store_conformance_props!(futures $get_store, $cases);
    };
}

/// Internal to [`store_conformance_proptests!`](crate::store_conformance_proptests).
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_props {
    ($mode:ident $get_store:path, $cases:expr) => {
        #[allow(unused_imports)]
        mod store_conformance_props {
            use super::*;
            $crate::__store_conformance_prop!($mode $get_store, $cases,
                seq_gap_free_under_random_sends_and_retries, send_script, check_send_script);
            $crate::__store_conformance_prop!($mode $get_store, $cases,
                receipts_monotonic_under_random_marks, receipt_script, check_receipt_script);
            $crate::__store_conformance_prop!($mode $get_store, $cases,
                sync_replay_is_complete_from_any_cursor, sync_script, check_sync_script);
        }
    };
}

/// Internal to [`store_conformance_proptests!`](crate::store_conformance_proptests).
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_prop {
    ($mode:ident $get_store:path, $cases:expr, $name:ident, $strategy:ident, $check:ident) => {
        #[test]
        fn $name() {
            use $crate::testing::__proptest::test_runner::{Config, TestRunner};
            let rt = $crate::__store_conformance_executor!($mode);
            let mut runner = TestRunner::new(Config {
                cases: $cases,
                ..Config::default()
            });
            let result = runner.run(&$crate::testing::props::$strategy(), |script| {
                rt.block_on(async {
                    let store = $get_store().await;
                    $crate::testing::props::$check($crate::testing::AsDynStore::as_dyn_store(&store), &script).await;
                });
                Ok(())
            });
            if let Err(e) = result {
                panic!("{}", e);
            }
        }
    };
}

/// Internal: something with a `block_on(&self, future)` method.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_executor {
    (tokio) => {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build a tokio runtime for the property tests")
    };
    (futures) => {
        $crate::testing::FuturesExecutor
    };
}

/// Runs futures with `futures::executor::block_on` (for the macros' `executor = futures`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct FuturesExecutor;

impl FuturesExecutor {
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        futures::executor::block_on(future)
    }
}
