//! The store conformance suite (`chatico_core::testing`) against the in-memory store, plus
//! its property tests. Run: `cargo test -p chatico-core --test memory_conformance`.

use chatico_core::memory::MemoryStore;
use chatico_core::testing::props::apply_mark;
use proptest::prelude::*;

async fn get_store() -> MemoryStore {
    MemoryStore::new()
}

chatico_core::store_conformance_tests!(get_store, executor = futures);
chatico_core::store_conformance_proptests!(get_store, cases = 256, executor = futures);

type Mark = (Option<i64>, Option<i64>);

fn marks() -> impl Strategy<Value = Vec<Mark>> {
    prop::collection::vec((prop::option::of(-3i64..40), prop::option::of(-3i64..40)), 0..12)
}

proptest! {
    /// The watermark model the receipt checker uses: monotonic, clamped, delivered >= read,
    /// and independent of the order of the marks (the checker relies on this to predict the
    /// outcome of concurrent marks).
    #[test]
    fn watermark_model_is_monotonic_clamped_and_order_independent(
        start in (0i64..20, 0i64..20),
        last_seq in 0i64..30,
        marks in marks(),
        rotate in 0usize..12,
    ) {
        let start = (start.0.max(start.1).min(last_seq), start.1.min(last_seq));
        let mut wm = start;
        for &(d, r) in &marks {
            let next = apply_mark(wm, last_seq, d, r);
            prop_assert!(next.0 >= wm.0 && next.1 >= wm.1, "monotonic");
            prop_assert!(next.0 <= last_seq && next.1 <= next.0, "clamped, delivered >= read");
            wm = next;
        }
        let mut rotated = marks.clone();
        if !rotated.is_empty() {
            let k = rotate % rotated.len();
            rotated.rotate_left(k);
            rotated.reverse();
        }
        let other = rotated.iter().fold(start, |w, &(d, r)| apply_mark(w, last_seq, d, r));
        prop_assert_eq!(wm, other, "order independent");
    }
}

/// Every `pub async fn name(store: &dyn Store)` of the suite is in the macro's list, and the
/// list names nothing else, so no test can be left out of the backends' runs.
#[test]
fn the_macro_lists_every_suite_test() {
    let sources = [
        include_str!("../src/testing/users.rs"),
        include_str!("../src/testing/conversations.rs"),
        include_str!("../src/testing/messages.rs"),
        include_str!("../src/testing/sync.rs"),
        include_str!("../src/testing/push.rs"),
        include_str!("../src/testing/mentions_pins.rs"),
        include_str!("../src/testing/reactions.rs"),
        include_str!("../src/testing/search.rs"),
    ];
    let mut defined: Vec<&str> = sources
        .iter()
        .flat_map(|src| src.lines())
        .filter_map(|line| line.strip_prefix("pub async fn "))
        .filter(|rest| rest.contains("(store: &dyn Store)"))
        .filter_map(|rest| rest.split('(').next())
        .collect();
    defined.sort_unstable();
    let mut listed = chatico_core::testing::CONFORMANCE_TESTS.to_vec();
    listed.sort_unstable();
    assert_eq!(defined, listed);
}
