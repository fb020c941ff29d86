use proptest::prelude::*;

use super::*;

/// The shape every [`SortedBlocks`] must keep, checked against its own fields.
fn check_invariants<T: Ord + Copy + std::fmt::Debug>(s: &SortedBlocks<T>) {
    assert_eq!(s.len, s.blocks.iter().map(Vec::len).sum::<usize>());
    assert!(s.blocks.iter().all(|b| !b.is_empty()), "no empty block");
    assert!(
        s.blocks.iter().all(|b| b.len() < SPLIT_AT),
        "every block below the split size"
    );
    if s.blocks.len() > 1 {
        assert!(
            s.blocks.iter().all(|b| b.len() >= MERGE_BELOW),
            "no small block when there are several: {:?}",
            s.blocks.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
    let all: Vec<T> = s.blocks.iter().flatten().copied().collect();
    assert!(all.windows(2).all(|w| w[0] <= w[1]), "sorted across blocks");
    assert_eq!(s.index.len(), s.blocks.len());
    for (i, block) in s.blocks.iter().enumerate() {
        assert_eq!(s.index.count(i) as usize, block.len(), "index of block {i}");
    }
    assert_eq!(
        s.capacity,
        s.blocks.iter().map(Vec::capacity).sum::<usize>()
    );
}

fn contents<T: Copy>(s: &SortedBlocks<T>) -> Vec<T> {
    s.blocks.iter().flatten().copied().collect()
}

#[test]
fn fenwick_prefix_count_and_find() {
    // Counts 3 0 2 5 1 over slots 0..5.
    let f = Fenwick::from_counts([3, 0, 2, 5, 1]);
    assert_eq!(
        (0..=5).map(|e| f.prefix(e)).collect::<Vec<_>>(),
        vec![0, 3, 3, 5, 10, 11]
    );
    assert_eq!(
        (0..5).map(|s| f.count(s)).collect::<Vec<_>>(),
        [3, 0, 2, 5, 1]
    );
    let expected = [
        (0, 0),
        (0, 1),
        (0, 2),
        (2, 0),
        (2, 1),
        (3, 0),
        (3, 1),
        (3, 2),
        (3, 3),
        (3, 4),
        (4, 0),
    ];
    for (rank, want) in expected.iter().enumerate() {
        assert_eq!(f.find(rank as u32), Some(*want), "rank {rank}");
    }
    assert_eq!(f.find(11), None);
    assert_eq!(Fenwick::default().find(0), None);
}

#[test]
fn fenwick_add_sub_match_a_rebuild() {
    let mut counts = vec![0u32; 13];
    let mut f = Fenwick::from_counts(counts.clone());
    for (slot, delta) in [(0, 2), (12, 1), (5, 7), (8, 3), (5, 1)] {
        f.add(slot, delta);
        counts[slot] += delta;
    }
    f.sub(5, 4);
    counts[5] -= 4;
    let rebuilt = Fenwick::from_counts(counts.clone());
    assert_eq!(f.tree, rebuilt.tree);
    assert_eq!(f.find(2), Some((5, 0)));
    assert_eq!(f.find(6), Some((8, 0)));
    assert_eq!(f.find(9), Some((12, 0)));
    assert_eq!(f.find(10), None);
}

#[test]
fn fenwick_grows_by_powers_of_two_as_if_rebuilt() {
    let mut f = Fenwick::default();
    f.grow_pow2(4);
    f.add(1, 2);
    f.add(3, 1);
    f.grow_pow2(8);
    assert_eq!(f.tree, Fenwick::from_counts([0, 2, 0, 1, 0, 0, 0, 0]).tree);
    f.add(6, 4);
    f.grow_pow2(64);
    let mut counts = vec![0u32; 64];
    (counts[1], counts[3], counts[6]) = (2, 1, 4);
    assert_eq!(f.tree, Fenwick::from_counts(counts).tree);
    assert_eq!(f.find(6), Some((6, 3)));
    assert_eq!(f.find(7), None);
}

#[test]
fn int_counts_kth_after_inserts_and_removes() {
    let mut c = IntCounts::default();
    for v in [5, 3, 3, 0, 4095, 4096, u32::MAX, 17, 100_000, 3] {
        c.insert(v);
    }
    let all: Vec<u32> = (0..c.len()).map(|r| c.kth(r).unwrap()).collect();
    assert_eq!(
        all,
        [0, 3, 3, 3, 5, 17, 4095, 4096, 100_000, u32::MAX],
        "dense values first, then the sparse ones"
    );
    assert_eq!(c.kth(10), None);
    assert!(c.remove(3));
    assert!(c.remove(u32::MAX));
    assert!(c.remove(4095));
    assert!(!c.remove(4095), "only one was held");
    assert!(!c.remove(6), "never held, inside the dense range");
    assert!(!c.remove(4000), "never held, beyond the dense tree");
    assert!(!c.remove(5000), "never held, sparse");
    let all: Vec<u32> = (0..c.len()).map(|r| c.kth(r).unwrap()).collect();
    assert_eq!(all, [0, 3, 3, 5, 17, 4096, 100_000]);
    // The dense tree grew only to hold 4095: 4096 slots of u32.
    assert_eq!(c.dense.len(), 4096);
}

#[test]
fn int_counts_dense_tree_stays_small_for_small_values() {
    let mut c = IntCounts::default();
    for v in 0..20u32 {
        c.insert(v % 7);
    }
    assert_eq!(c.dense.len(), DENSE_MIN);
    c.insert(40);
    assert_eq!(c.dense.len(), 64);
    assert_eq!(c.kth(20), Some(40));
    assert_eq!(c.kth(0), Some(0));
    assert_eq!(c.kth(19), Some(6));
}

#[test]
fn blocks_split_when_full_and_stay_sorted() {
    let mut s = SortedBlocks::default();
    // Descending inserts all land at the front of the first block.
    for v in (0..(3 * SPLIT_AT) as u64).rev() {
        s.insert(v);
    }
    check_invariants(&s);
    assert!(s.blocks.len() >= 3, "{} blocks", s.blocks.len());
    assert_eq!(s.len(), 3 * SPLIT_AT);
    for rank in [
        0,
        1,
        SPLIT_AT - 1,
        SPLIT_AT,
        2 * SPLIT_AT + 7,
        3 * SPLIT_AT - 1,
    ] {
        assert_eq!(s.kth(rank), Some(rank as u64));
    }
    assert_eq!(s.kth(3 * SPLIT_AT), None);
}

#[test]
fn blocks_merge_when_small_and_vanish_when_empty() {
    let mut s = SortedBlocks::default();
    let n = 4 * SPLIT_AT as u64;
    for v in 0..n {
        s.insert(v);
    }
    let before = s.blocks.len();
    assert!(before >= 4);
    // Empty the lower half: blocks merge, then go.
    for v in 0..n / 2 {
        assert!(s.remove(v));
        if v % 97 == 0 {
            check_invariants(&s);
        }
    }
    check_invariants(&s);
    assert!(s.blocks.len() < before, "{} -> {}", before, s.blocks.len());
    assert_eq!(s.kth(0), Some(n / 2));
    // Remove every other value of the rest, then all: no block is ever left empty.
    for v in (n / 2..n).step_by(2) {
        assert!(s.remove(v));
    }
    check_invariants(&s);
    assert_eq!(s.kth(0), Some(n / 2 + 1));
    assert_eq!(s.kth(1), Some(n / 2 + 3));
    for v in (n / 2 + 1..n).step_by(2) {
        assert!(s.remove(v));
    }
    check_invariants(&s);
    assert_eq!((s.len(), s.blocks.len(), s.kth(0)), (0, 0, None));
    assert!(!s.remove(0));
    // Usable again after emptying.
    s.insert(9);
    assert_eq!(s.kth(0), Some(9));
}

#[test]
fn blocks_merge_into_a_full_neighbour_splits_again() {
    let mut s = SortedBlocks::default();
    let split = SPLIT_AT as u64;
    for v in 0..split {
        s.insert(v);
    }
    // Two halves; fill the upper one to one short of a split.
    assert_eq!(
        s.blocks.iter().map(Vec::len).collect::<Vec<_>>(),
        [SPLIT_AT / 2, SPLIT_AT / 2]
    );
    for v in split..split + split / 2 - 1 {
        s.insert(v);
    }
    assert_eq!(
        s.blocks.iter().map(Vec::len).collect::<Vec<_>>(),
        [SPLIT_AT / 2, SPLIT_AT - 1]
    );
    // Shrink the lower one below MERGE_BELOW: merged it would be too big, so it splits.
    let removed = (SPLIT_AT / 2 - MERGE_BELOW + 1) as u64;
    for v in 0..removed {
        assert!(s.remove(v));
    }
    check_invariants(&s);
    let total = SPLIT_AT / 2 - removed as usize + SPLIT_AT - 1;
    assert_eq!(
        s.blocks.iter().map(Vec::len).collect::<Vec<_>>(),
        [total / 2, total - total / 2]
    );
    assert_eq!(
        contents(&s),
        (removed..split + split / 2 - 1).collect::<Vec<_>>()
    );
    assert_eq!(s.kth(total / 2), Some(removed + (total / 2) as u64));
}

#[test]
fn blocks_duplicates_spanning_blocks() {
    let mut s = SortedBlocks::default();
    for _ in 0..3 * SPLIT_AT {
        s.insert(7u32);
    }
    s.insert(1);
    s.insert(9);
    check_invariants(&s);
    assert!(s.blocks.len() > 1);
    assert_eq!(s.kth(0), Some(1));
    assert_eq!(s.kth(1), Some(7));
    assert_eq!(s.kth(3 * SPLIT_AT), Some(7));
    assert_eq!(s.kth(3 * SPLIT_AT + 1), Some(9));
    for _ in 0..3 * SPLIT_AT {
        assert!(s.remove(7));
    }
    assert!(!s.remove(7));
    check_invariants(&s);
    assert_eq!(contents(&s), [1, 9]);
}

#[test]
fn blocks_refuse_absent_values_unchanged() {
    let mut s = SortedBlocks::default();
    for v in [10u64, 20, 30] {
        s.insert(v);
    }
    for absent in [0, 15, 25, 40] {
        assert!(!s.remove(absent));
    }
    assert_eq!(contents(&s), [10, 20, 30]);
    check_invariants(&s);
}

/// Blocks built from unsorted values at once keep every invariant (full pieces, the last two
/// sharing the rest, none below the merge size) and the values, and then split and merge as
/// blocks built by inserts do.
#[test]
fn blocks_built_at_once_keep_the_shape() {
    let mut seed = 12_345u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % 700
    };
    for n in [
        0,
        1,
        2,
        PIECE - 1,
        PIECE,
        PIECE + 1,
        PIECE + MERGE_BELOW,
        2 * PIECE + 3,
        SPLIT_AT + 700,
        20_000,
    ] {
        let mut unsorted = Unsorted::default();
        let mut sorted: Vec<u64> = Vec::new();
        for _ in 0..n {
            let v = next();
            unsorted.push(v);
            sorted.push(v);
        }
        sorted.sort_unstable();
        let mut built = unsorted.sorted();
        check_invariants(&built);
        assert_eq!(contents(&built), sorted, "n = {n}");
        assert_eq!(built.blocks.len(), n.div_ceil(PIECE), "n = {n}");
        assert!(
            built.blocks.iter().all(|b| b.capacity() <= PIECE),
            "the pieces became the blocks: n = {n}"
        );
        for (rank, v) in sorted.iter().enumerate().step_by(97) {
            assert_eq!(built.kth(rank), Some(*v));
        }
        for _ in 0..3_000 {
            built.insert(next());
        }
        check_invariants(&built);
        let mut left = contents(&built);
        for v in left.clone().iter().step_by(2) {
            assert!(built.remove(*v));
            let at = left.binary_search(v).unwrap();
            left.remove(at);
        }
        check_invariants(&built);
        assert_eq!(contents(&built), left);
        // Taken apart and sorted again, with one more value.
        let mut again = built.into_unsorted();
        again.push(350);
        let again = again.sorted();
        check_invariants(&again);
        left.insert(left.partition_point(|v| *v < 350), 350);
        assert_eq!(contents(&again), left);
    }
}

fn value() -> impl Strategy<Value = u32> {
    // Narrow ranges make duplicates; 4090..4100 straddles the dense limit.
    prop_oneof![0u32..50, 0u32..5000, 4090u32..4100, any::<u32>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Both structures against a sorted Vec, through thousands of updates: inserts (several
    /// splits), then mostly removes (merges, emptied blocks), then inserts and removes mixed.
    #[test]
    fn structures_match_a_sorted_vec(
        grow in proptest::collection::vec(value(), 0..10_000),
        shrink in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10_000),
        mixed in proptest::collection::vec((value(), any::<bool>()), 0..3_000),
    ) {
        let mut model: Vec<u32> = Vec::new();
        let mut blocks = SortedBlocks::default();
        let mut counts = IntCounts::default();
        let mut step = 0usize;
        let mut apply = |insert: bool, v: u32, model: &mut Vec<u32>| -> Result<(), TestCaseError> {
            if insert {
                let at = model.partition_point(|x| *x < v);
                model.insert(at, v);
                blocks.insert(v);
                counts.insert(v);
            } else {
                let held = model.binary_search(&v).ok();
                if let Some(at) = held {
                    model.remove(at);
                }
                prop_assert_eq!(blocks.remove(v), held.is_some());
                prop_assert_eq!(counts.remove(v), held.is_some());
            }
            step += 1;
            if step.is_multiple_of(500) {
                check_invariants(&blocks);
            }
            Ok(())
        };
        for v in &grow {
            apply(true, *v, &mut model)?;
        }
        for (i, index) in shrink.iter().enumerate() {
            // Mostly held values; every seventh is likely absent.
            let v = if model.is_empty() || i % 7 == 0 {
                grow.get(i).copied().unwrap_or(7) ^ 1
            } else {
                model[index.index(model.len())]
            };
            apply(false, v, &mut model)?;
        }
        for (v, insert) in &mixed {
            let v = if *insert || model.is_empty() { *v } else { model[*v as usize % model.len()] };
            apply(*insert, v, &mut model)?;
        }
        check_invariants(&blocks);
        prop_assert_eq!(blocks.len(), model.len());
        prop_assert_eq!(counts.len(), model.len());
        for (rank, v) in model.iter().enumerate() {
            prop_assert_eq!(blocks.kth(rank), Some(*v));
            prop_assert_eq!(counts.kth(rank), Some(*v));
        }
        prop_assert_eq!(blocks.kth(model.len()), None);
        prop_assert_eq!(counts.kth(model.len()), None);
    }
}
