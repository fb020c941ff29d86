//! Disclosure control across cells (METHODOLOGY.md §4, version 1.1): primary suppression of a
//! cell with n < k, and secondary suppression, so that a suppressed figure cannot be recovered
//! by subtracting published siblings from a published total.
//!
//! The rule is stated over *partitions* (a total and the parts it is the sum of) and decided
//! from the cells' n alone, so the caller (the projector, a rebuild, a release) describes the
//! partitions of one (year, procedure) and gets every cell's suppression back, the same on a
//! live store and after a rebuild:
//!
//! - in every partition, the number of suppressed members (parts and total) is never exactly
//!   one; when it is, the published *part* with the smallest n is suppressed as well
//!   (`Secondary`), ties broken by the order of the parts (the caller lists them by province
//!   code, or in §7's group order);
//! - a total is never suppressed because of its parts, except that cells holding exactly the
//!   same observations (a vn-34 cell and its single vn-63 predecessor, a national cell and its
//!   only part) are suppressed together; a partition with a single part is such a pair;
//! - the partitions are gone through in the caller's order ((a)-(d) of §4), and the whole pass
//!   is repeated until nothing changes (suppression only grows, so it ends).

/// Why a cell publishes no statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// Its own n is below k.
    Primary,
    /// Published, it would let a suppressed sibling or total be recovered (§4, 1.1).
    Secondary,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::Primary => "primary",
            Suppression::Secondary => "secondary",
        }
    }
}

/// A total and the parts whose sum it is, as indices into the caller's cells; the parts in
/// tie-break order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub total: usize,
    pub parts: Vec<usize>,
}

/// Every cell's suppression, from the cells' observation counts `n`, the threshold `k`, the
/// partitions in the order §4 goes through them, and the pairs of cells that hold the same
/// observations (beside those implied by single-part partitions).
///
/// # Panics
/// Never for indices within `n`; an index outside it is a caller's bug and panics.
pub fn decide(
    n: &[u32],
    k: u32,
    partitions: &[Partition],
    same: &[(usize, usize)],
) -> Vec<Option<Suppression>> {
    let mut state: Vec<Option<Suppression>> = n
        .iter()
        .map(|&n| (n < k).then_some(Suppression::Primary))
        .collect();
    let mut pairs: Vec<(usize, usize)> = same.to_vec();
    pairs.extend(
        partitions
            .iter()
            .filter(|p| p.parts.len() == 1)
            .map(|p| (p.total, p.parts[0])),
    );
    let together = |state: &mut Vec<Option<Suppression>>| {
        // A closure over the pairs: until no pair has exactly one side suppressed.
        let mut changed = true;
        while changed {
            changed = false;
            for &(a, b) in &pairs {
                match (state[a], state[b]) {
                    (Some(_), None) => {
                        state[b] = Some(Suppression::Secondary);
                        changed = true;
                    }
                    (None, Some(_)) => {
                        state[a] = Some(Suppression::Secondary);
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
    };
    together(&mut state);
    loop {
        let mut changed = false;
        for partition in partitions {
            let members = std::iter::once(partition.total).chain(partition.parts.iter().copied());
            let suppressed = members.filter(|&i| state[i].is_some()).count();
            if suppressed != 1 {
                continue;
            }
            // The smallest published part; the first in the caller's order among equals.
            let smallest = partition
                .parts
                .iter()
                .copied()
                .filter(|&i| state[i].is_none())
                .min_by_key(|&i| n[i]);
            if let Some(i) = smallest {
                state[i] = Some(Suppression::Secondary);
                together(&mut state);
                changed = true;
            }
        }
        if !changed {
            return state;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Suppression::{Primary as P, Secondary as S};

    fn partition(total: usize, parts: &[usize]) -> Partition {
        Partition {
            total,
            parts: parts.to_vec(),
        }
    }

    /// k = 5. A national cell N (n = 30) over provinces A (3), B (12), C (15), in code order.
    /// A is primary; (c) then has one suppressed member, so the smallest published part, B
    /// (12 < 15), is secondary; the next pass finds two and stops. With B and C equal, B (the
    /// lower code) is chosen.
    #[test]
    fn the_smallest_published_sibling_goes_with_a_lone_suppressed_cell() {
        let (n, a, b, c) = (0, 1, 2, 3);
        let partitions = [partition(n, &[a, b, c])];
        assert_eq!(
            decide(&[30, 3, 12, 15], 5, &partitions, &[]),
            vec![None, Some(P), Some(S), None]
        );
        assert_eq!(
            decide(&[27, 3, 12, 12], 5, &partitions, &[]),
            vec![None, Some(P), Some(S), None]
        );
        // Two primary parts already protect each other; nothing published is touched.
        assert_eq!(
            decide(&[30, 3, 4, 23], 5, &partitions, &[]),
            vec![None, Some(P), Some(P), None]
        );
        // Nothing suppressed, nothing to do.
        assert_eq!(decide(&[30, 5, 10, 15], 5, &partitions, &[]), vec![None; 4]);
    }

    /// A total can only be the lone suppressed member of its partition through a cell holding
    /// the same observations. k = 5: T (22) over M (20) and R (2, primary); N (20) holds the
    /// same observations as M, and is the total of A (8) and B (12). T's partition suppresses
    /// M (the only published part), N goes with M, and N's partition then suppresses A
    /// (8 < 12).
    #[test]
    fn a_lone_suppressed_total_takes_its_smallest_part_along() {
        let [n, a, b, m, t, r] = [0, 1, 2, 3, 4, 5];
        let partitions = [partition(t, &[m, r]), partition(n, &[a, b])];
        let state = decide(&[20, 8, 12, 20, 22, 2], 5, &partitions, &[(n, m)]);
        assert_eq!(state, vec![Some(S), Some(S), None, Some(S), None, Some(P)]);
    }

    /// A worked example across both maps (§4, 1.1), k = 5, one (year, procedure):
    ///
    /// vn-34: national N34 (40) over X (3), P (12), Q (25). vn-63: national N63 (40) over X1
    /// (3), P1 (12), Q1 (10), Q2 (15). X's only predecessor is X1, P's only P1, Q's are Q1
    /// and Q2. Partitions in §4's order: (a) X: X1; P: P1; Q: Q1, Q2; (b) N63: X1, P1, Q1,
    /// Q2; (c) N34: X, P, Q.
    ///
    /// Pass 1: X, X1 primary. (a) Q: nothing suppressed. (b) N63: X1 alone: the smallest
    /// published part is Q1 (10): secondary. (c) N34: X alone: P (12 < 25): secondary, and P1
    /// with it (the same observations). Pass 2: (a) Q: Q1 alone: Q2, secondary. (b), (c): two
    /// or more each. Pass 3: no change. Q stays published: it is the sum of two suppressed
    /// cells, whose separate values nothing reveals.
    #[test]
    fn the_worked_example_cascades_across_maps() {
        let [n34, x, p, q, n63, x1, p1, q1, q2] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
        let n = [40, 3, 12, 25, 40, 3, 12, 10, 15];
        let partitions = [
            partition(x, &[x1]),
            partition(p, &[p1]),
            partition(q, &[q1, q2]),
            partition(n63, &[x1, p1, q1, q2]),
            partition(n34, &[x, p, q]),
        ];
        let state = decide(&n, 5, &partitions, &[]);
        let expected = [
            (n34, None),
            (x, Some(P)),
            (p, Some(S)),
            (q, None),
            (n63, None),
            (x1, Some(P)),
            (p1, Some(S)),
            (q1, Some(S)),
            (q2, Some(S)),
        ];
        for (cell, suppression) in expected {
            assert_eq!(state[cell], suppression, "cell {cell}");
        }
    }

    /// A dimension of §7 (woman_owned: yes, no, unknown) under a national cell N (30): yes (2)
    /// is primary, so unknown (8 < 20) is secondary.
    #[test]
    fn breakdown_groups_are_a_partition_too() {
        let partitions = [partition(0, &[1, 2, 3])];
        assert_eq!(
            decide(&[30, 2, 20, 8], 5, &partitions, &[]),
            vec![None, Some(P), None, Some(S)]
        );
    }
}
