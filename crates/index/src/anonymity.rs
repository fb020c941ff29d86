//! k-anonymous open microdata (METHODOLOGY.md §4, version 1.1): within one (year, procedure),
//! every combination of (province, size class, sector section, woman_owned,
//! ethnic_minority_owned) among the published rows appears in at least k rows.
//!
//! Where a combination is rarer, its profile fields are published as unknown, one field per
//! step, in a fixed order (ethnic_minority_owned, woman_owned, sector_section, size_class):
//! each step blanks that field on every row of the combinations still rarer than k, then
//! counts again. Rows still rarer than k after the four steps are left out of the microdata
//! (their cell's n still counts them). The province is never blanked: the rows come from
//! published province cells, which hold at least k observations each.

use std::collections::HashMap;

/// The quasi-identifiers of one microdata row; `None` is unknown (undeclared, or blanked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Quasi {
    pub province: String,
    pub size_class: Option<String>,
    pub sector_section: Option<String>,
    pub woman_owned: Option<bool>,
    pub ethnic_minority_owned: Option<bool>,
}

/// How many rows share each row's combination.
fn counts(rows: &[Quasi]) -> HashMap<&Quasi, usize> {
    let mut counts = HashMap::new();
    for row in rows {
        *counts.entry(row).or_insert(0) += 1;
    }
    counts
}

/// The rows of one (year, procedure) as they may be published: each row's quasi-identifiers
/// after blanking, or `None` for a row left out. In the input's order.
pub fn k_anonymous(rows: &[Quasi], k: usize) -> Vec<Option<Quasi>> {
    type Blank = fn(&mut Quasi);
    const STEPS: [Blank; 4] = [
        |q| q.ethnic_minority_owned = None,
        |q| q.woman_owned = None,
        |q| q.sector_section = None,
        |q| q.size_class = None,
    ];
    let mut rows = rows.to_vec();
    for blank in STEPS {
        let rare: Vec<bool> = {
            let counts = counts(&rows);
            rows.iter().map(|r| counts[r] < k).collect()
        };
        for (row, rare) in rows.iter_mut().zip(rare) {
            if rare {
                blank(row);
            }
        }
    }
    let keep: Vec<bool> = {
        let counts = counts(&rows);
        rows.iter().map(|r| counts[r] >= k).collect()
    };
    rows.into_iter()
        .zip(keep)
        .map(|(row, keep)| keep.then_some(row))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(
        province: &str,
        size: Option<&str>,
        sector: Option<&str>,
        woman: Option<bool>,
        ethnic: Option<bool>,
    ) -> Quasi {
        Quasi {
            province: province.into(),
            size_class: size.map(Into::into),
            sector_section: sector.map(Into::into),
            woman_owned: woman,
            ethnic_minority_owned: ethnic,
        }
    }

    /// k = 3, worked by hand. Province 79: r1 (small, G, yes, yes), r2 and r3 (small, G, yes,
    /// no), r4 (small, G, no, -), r5 (micro, C, -, -), r6-r8 (all unknown); province 01: r9
    /// (all unknown). Counts: r1 1, r2-r3 2, r4 1, r5 1, r6-r8 3, r9 1.
    /// Step 1 blanks ethnic_minority_owned on r1-r5 and r9: r1-r3 become (small, G, yes, -),
    /// 3 rows, kept; r4 (small, G, no, -) 1; r5 1; r9 1. Step 2 blanks woman_owned on r4, r5,
    /// r9; step 3 the sector; step 4 the size: r4 and r5 become all unknown in 79 and join
    /// r6-r8 (5 rows). r9 is still alone in 01: left out.
    #[test]
    fn rare_combinations_lose_fields_in_order_then_rows() {
        let rows = vec![
            q("79", Some("small"), Some("G"), Some(true), Some(true)),
            q("79", Some("small"), Some("G"), Some(true), Some(false)),
            q("79", Some("small"), Some("G"), Some(true), Some(false)),
            q("79", Some("small"), Some("G"), Some(false), None),
            q("79", Some("micro"), Some("C"), None, None),
            q("79", None, None, None, None),
            q("79", None, None, None, None),
            q("79", None, None, None, None),
            q("01", None, None, None, None),
        ];
        let out = k_anonymous(&rows, 3);
        let woman_small = q("79", Some("small"), Some("G"), Some(true), None);
        let unknown = q("79", None, None, None, None);
        assert_eq!(
            out,
            vec![
                Some(woman_small.clone()),
                Some(woman_small.clone()),
                Some(woman_small),
                Some(unknown.clone()),
                Some(unknown.clone()),
                Some(unknown.clone()),
                Some(unknown.clone()),
                Some(unknown),
                None,
            ]
        );
        // Every published combination appears at least k times.
        let published: Vec<Quasi> = out.into_iter().flatten().collect();
        let counts = counts(&published);
        assert!(counts.values().all(|&c| c >= 3));
    }

    /// Rows already k-anonymous are published as they are.
    #[test]
    fn common_combinations_are_untouched() {
        let row = q("79", Some("medium"), Some("F"), Some(false), Some(false));
        let rows = vec![row.clone(); 5];
        assert_eq!(k_anonymous(&rows, 5), vec![Some(row); 5]);
        assert_eq!(k_anonymous(&[], 5), Vec::<Option<Quasi>>::new());
    }
}
