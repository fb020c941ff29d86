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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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

/// A cell of one (year, procedure), as §4 names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CellRef {
    /// A province cell: geography (`vn-34`, `vn-63`) and province code.
    Province(String, String),
    /// A national cell (province `all`) of a geography.
    National(String),
    /// A breakdown group (§7): geography, dimension, group.
    Group(String, String, String),
}

/// The cells of one (year, procedure) with their n, as the partitions of §4 need them.
#[derive(Debug, Clone, Default)]
pub struct YearCells {
    /// vn-63 province cells: (code, n, the vn-34 successor's code), by code.
    pub vn63: Vec<(String, u32, String)>,
    /// vn-34 province cells: (code, n), by code.
    pub vn34: Vec<(String, u32)>,
    /// The national cells' n, per geography (absent: the geography has no observation).
    pub vn63_national: Option<u32>,
    pub vn34_national: Option<u32>,
    /// Breakdown groups, with the dimensions in §7's order for each geography.
    pub breakdowns: Vec<Breakdown>,
}

/// The groups of one dimension (§7) under a geography's national cell.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    pub geography: String,
    pub dimension: String,
    /// (group, n), in §7's group order.
    pub groups: Vec<(String, u32)>,
}

/// Every cell of `cells` with its suppression (§4, 1.1). The partitions, in §4's order:
/// (a) each vn-34 province cell over its vn-63 predecessors when it holds exactly their
/// observations (its n is theirs added up: every observation was recorded under vn-63); (b) the
/// vn-63 provinces under the vn-63 national cell; (c) the vn-34 provinces under the vn-34
/// national cell; (d) the groups of each dimension under their national cell, vn-63 before
/// vn-34 as in (b) and (c).
pub fn decide_year(cells: &YearCells, k: u32) -> Vec<(CellRef, Option<Suppression>)> {
    const VN63: &str = "vn-63";
    const VN34: &str = "vn-34";
    let mut refs: Vec<CellRef> = Vec::new();
    let mut n: Vec<u32> = Vec::new();
    let mut add = |cell: CellRef, count: u32| {
        refs.push(cell);
        n.push(count);
        n.len() - 1
    };
    let vn63: Vec<usize> = cells
        .vn63
        .iter()
        .map(|(code, count, _)| add(CellRef::Province(VN63.into(), code.clone()), *count))
        .collect();
    let vn34: Vec<usize> = cells
        .vn34
        .iter()
        .map(|(code, count)| add(CellRef::Province(VN34.into(), code.clone()), *count))
        .collect();
    let national63 = cells
        .vn63_national
        .map(|count| add(CellRef::National(VN63.into()), count));
    let national34 = cells
        .vn34_national
        .map(|count| add(CellRef::National(VN34.into()), count));
    let mut groups = Vec::new();
    for b in &cells.breakdowns {
        let ids: Vec<usize> = b
            .groups
            .iter()
            .map(|(group, count)| {
                add(
                    CellRef::Group(b.geography.clone(), b.dimension.clone(), group.clone()),
                    *count,
                )
            })
            .collect();
        groups.push((b.geography.as_str(), ids));
    }

    let mut partitions = Vec::new();
    for (i, (code, count)) in cells.vn34.iter().enumerate() {
        let predecessors: Vec<usize> = cells
            .vn63
            .iter()
            .enumerate()
            .filter(|(_, (_, _, successor))| successor == code)
            .map(|(j, _)| vn63[j])
            .collect();
        let theirs: u32 = predecessors.iter().map(|&j| n[j]).sum();
        if !predecessors.is_empty() && theirs == *count {
            partitions.push(Partition {
                total: vn34[i],
                parts: predecessors,
            });
        }
    }
    if let Some(total) = national63 {
        partitions.push(Partition {
            total,
            parts: vn63.clone(),
        });
    }
    if let Some(total) = national34 {
        partitions.push(Partition {
            total,
            parts: vn34.clone(),
        });
    }
    for geography in [VN63, VN34] {
        let national = if geography == VN63 {
            national63
        } else {
            national34
        };
        let Some(total) = national else { continue };
        for (_, ids) in groups.iter().filter(|(g, _)| *g == geography) {
            partitions.push(Partition {
                total,
                parts: ids.clone(),
            });
        }
    }
    let state = decide(&n, k, &partitions, &[]);
    refs.into_iter().zip(state).collect()
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

    /// The worked example across both maps, through [`decide_year`], with a breakdown: the
    /// vn-34 national cell's woman_owned groups yes (3), no (30), unknown (7): yes is primary,
    /// unknown (7) secondary. The vn-34 cells X (3), P (12), Q (25) hold exactly the
    /// observations of their vn-63 predecessors, so (a) applies to each.
    #[test]
    fn a_year_of_cells_is_decided_in_the_order_of_section_4() {
        let cells = YearCells {
            vn63: vec![
                ("X1".into(), 3, "X".into()),
                ("P1".into(), 12, "P".into()),
                ("Q1".into(), 10, "Q".into()),
                ("Q2".into(), 15, "Q".into()),
            ],
            vn34: vec![("P".into(), 12), ("Q".into(), 25), ("X".into(), 3)],
            vn63_national: Some(40),
            vn34_national: Some(40),
            breakdowns: vec![Breakdown {
                geography: "vn-34".into(),
                dimension: "woman_owned".into(),
                groups: vec![("yes".into(), 3), ("no".into(), 30), ("unknown".into(), 7)],
            }],
        };
        let decided: std::collections::BTreeMap<CellRef, Option<Suppression>> =
            decide_year(&cells, 5).into_iter().collect();
        let province = |g: &str, c: &str| CellRef::Province(g.into(), c.into());
        let group = |g: &str| CellRef::Group("vn-34".into(), "woman_owned".into(), g.into());
        let expected = [
            (province("vn-34", "X"), Some(P)),
            (province("vn-34", "P"), Some(S)),
            (province("vn-34", "Q"), None),
            (province("vn-63", "X1"), Some(P)),
            (province("vn-63", "P1"), Some(S)),
            (province("vn-63", "Q1"), Some(S)),
            (province("vn-63", "Q2"), Some(S)),
            (CellRef::National("vn-63".into()), None),
            (CellRef::National("vn-34".into()), None),
            (group("yes"), Some(P)),
            (group("no"), None),
            (group("unknown"), Some(S)),
        ];
        assert_eq!(decided.len(), expected.len());
        for (cell, suppression) in expected {
            assert_eq!(decided[&cell], suppression, "{cell:?}");
        }
    }
}
