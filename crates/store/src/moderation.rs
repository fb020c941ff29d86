//! Reads for the reform-office workflow: the moderation queue, a filer's daily count (the
//! abuse cap) and the published response statistics. All from read models the projector
//! maintains (`observations`, `responses`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use redtape_domain::Scope;

use crate::db::Db;
use crate::StoreError;

/// Which submissions the queue lists.
#[derive(Debug, Clone)]
pub struct QueueFilter {
    pub status: &'static str,
    /// A `vn-34` province code.
    pub province: Option<String>,
    pub procedure: Option<String>,
    /// The officer's provinces; submissions outside are never listed.
    pub scope: Scope,
    /// Keyset cursor: list only submissions after this (filed_at, id).
    pub after: Option<(String, String)>,
    pub limit: u32,
}

/// One submission waiting for (or past) moderation.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QueueRow {
    pub submission_id: String,
    pub kind: String,
    pub status: String,
    pub procedure_code: String,
    pub geography: String,
    pub province_code: String,
    pub province_vn34: String,
    pub year: i32,
    pub amendments: i32,
    pub filed_at: String,
    pub updated_at: String,
}

/// The queue, oldest first (by filing time, then id, so the order is total and a cursor
/// never skips or repeats a row).
pub async fn queue(db: &Db, filter: &QueueFilter) -> Result<Vec<QueueRow>, StoreError> {
    macro_rules! build {
        ($database:ty) => {{
            let mut q = sqlx::QueryBuilder::<$database>::new(
                "SELECT submission_id, kind, status, procedure_code, geography, province_code, \
                 province_vn34, year, amendments, filed_at, updated_at FROM observations \
                 WHERE status = ",
            );
            q.push_bind(filter.status);
            if let Some(p) = &filter.province {
                q.push(" AND province_vn34 = ").push_bind(p.clone());
            }
            if let Some(code) = &filter.procedure {
                q.push(" AND procedure_code = ").push_bind(code.clone());
            }
            if let Scope::Provinces(set) = &filter.scope {
                q.push(" AND province_vn34 IN (");
                let mut list = q.separated(", ");
                for code in set {
                    list.push_bind(code.clone());
                }
                q.push(")");
            }
            if let Some((filed_at, id)) = &filter.after {
                q.push(" AND (filed_at > ")
                    .push_bind(filed_at.clone())
                    .push(" OR (filed_at = ")
                    .push_bind(filed_at.clone())
                    .push(" AND submission_id > ")
                    .push_bind(id.clone())
                    .push("))");
            }
            q.push(" ORDER BY filed_at, submission_id LIMIT ")
                .push_bind(i64::from(filter.limit));
            q
        }};
    }
    Ok(match db {
        Db::Postgres(pool) => {
            build!(sqlx::Postgres)
                .build_query_as()
                .fetch_all(pool)
                .await?
        }
        Db::Sqlite(pool) => {
            build!(sqlx::Sqlite)
                .build_query_as()
                .fetch_all(pool)
                .await?
        }
    })
}

/// How many submissions `filer` filed at or after `since` (as projected).
pub async fn filed_since(db: &Db, filer: &str, since: DateTime<Utc>) -> Result<u32, StoreError> {
    let (n,): (i64,) = crate::on_pool!(db, pool =>
        sqlx::query_as("SELECT count(*) FROM observations WHERE filer_id = $1 AND filed_at >= $2")
            .bind(filer).bind(crate::timestamp(since))
            .fetch_one(pool).await)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// One response event, with what the statistics need of its submission.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ResponseFact {
    pub submission_id: String,
    pub sequence: i64,
    pub agency: String,
    pub status: String,
    pub posted_at: String,
    pub province_vn34: String,
    pub filed_at: String,
}

/// Every response row with its submission's province and filing time, in log order per
/// submission. Optional filters on agency and province.
pub async fn response_facts(
    db: &Db,
    agency: Option<&str>,
    province: Option<&str>,
) -> Result<Vec<ResponseFact>, StoreError> {
    let sql = "SELECT r.submission_id, r.sequence, r.agency, r.status, r.posted_at, \
               o.province_vn34, o.filed_at FROM responses r \
               JOIN observations o ON o.submission_id = r.submission_id \
               WHERE ($1 IS NULL OR r.agency = $1) AND ($2 IS NULL OR o.province_vn34 = $2) \
               ORDER BY r.agency, o.province_vn34, r.submission_id, r.sequence";
    Ok(crate::on_pool!(db, pool =>
        sqlx::query_as::<_, ResponseFact>(sql).bind(agency).bind(province).fetch_all(pool).await)?)
}

/// Response statistics of one agency in one province.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseStats {
    pub agency: String,
    pub province_vn34: String,
    /// Submissions the agency answered at least once.
    pub submissions: u32,
    /// Responses posted (an agency may answer a submission several times).
    pub responses: u32,
    /// Submissions by the status of the agency's latest response to each.
    pub latest_status: BTreeMap<String, u32>,
    /// Median of the days from filing to the agency's first response (unrounded).
    pub median_days_to_first_response: Option<f64>,
}

/// Folds response facts (ordered as [`response_facts`] returns them) into statistics per
/// (agency, province). Pure, so it is tested without a database.
pub fn response_stats(facts: &[ResponseFact]) -> Result<Vec<ResponseStats>, StoreError> {
    let parse = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("timestamp {text:?}: {e}")))
    };
    // (agency, province) -> submission -> (first posted, latest status, responses)
    type PerSubmission = BTreeMap<String, (DateTime<Utc>, DateTime<Utc>, String, u32)>;
    let mut groups: BTreeMap<(String, String), PerSubmission> = BTreeMap::new();
    for f in facts {
        let posted = parse(&f.posted_at)?;
        let filed = parse(&f.filed_at)?;
        let entry = groups
            .entry((f.agency.clone(), f.province_vn34.clone()))
            .or_default()
            .entry(f.submission_id.clone())
            .or_insert((filed, posted, f.status.clone(), 0));
        entry.2 = f.status.clone();
        entry.3 += 1;
    }
    Ok(groups
        .into_iter()
        .map(|((agency, province_vn34), submissions)| {
            let mut latest_status = BTreeMap::new();
            let mut days = Vec::with_capacity(submissions.len());
            let mut responses = 0;
            for (filed, first, status, n) in submissions.values() {
                *latest_status.entry(status.clone()).or_insert(0) += 1;
                responses += n;
                days.push((*first - *filed).num_seconds() as f64 / 86_400.0);
            }
            ResponseStats {
                agency,
                province_vn34,
                submissions: u32::try_from(submissions.len()).unwrap_or(u32::MAX),
                responses,
                latest_status,
                median_days_to_first_response: redtape_index::percentile::median(
                    &redtape_index::percentile::sorted(days),
                ),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(
        id: &str,
        seq: i64,
        agency: &str,
        status: &str,
        filed: &str,
        posted: &str,
    ) -> ResponseFact {
        ResponseFact {
            submission_id: id.into(),
            sequence: seq,
            agency: agency.into(),
            status: status.into(),
            posted_at: posted.into(),
            province_vn34: "79".into(),
            filed_at: filed.into(),
        }
    }

    #[test]
    fn statistics_count_first_responses_and_latest_statuses() {
        let facts = [
            // Answered after 2 days, then resolved.
            fact(
                "a",
                2,
                "DPI",
                "acknowledged",
                "2025-10-01T00:00:00.000000Z",
                "2025-10-03T00:00:00.000000Z",
            ),
            fact(
                "a",
                3,
                "DPI",
                "resolved",
                "2025-10-01T00:00:00.000000Z",
                "2025-10-20T00:00:00.000000Z",
            ),
            // Answered after 12 hours.
            fact(
                "b",
                2,
                "DPI",
                "in_progress",
                "2025-10-01T00:00:00.000000Z",
                "2025-10-01T12:00:00.000000Z",
            ),
            // Answered after 7 days.
            fact(
                "c",
                2,
                "DPI",
                "not_actionable",
                "2025-10-01T00:00:00.000000Z",
                "2025-10-08T00:00:00.000000Z",
            ),
            fact(
                "c",
                3,
                "Tax",
                "acknowledged",
                "2025-10-01T00:00:00.000000Z",
                "2025-10-02T00:00:00.000000Z",
            ),
        ];
        let stats = response_stats(&facts).unwrap();
        assert_eq!(stats.len(), 2);
        let dpi = &stats[0];
        assert_eq!(
            (dpi.agency.as_str(), dpi.submissions, dpi.responses),
            ("DPI", 3, 4)
        );
        assert_eq!(
            dpi.latest_status,
            BTreeMap::from([
                ("in_progress".to_string(), 1),
                ("not_actionable".to_string(), 1),
                ("resolved".to_string(), 1)
            ])
        );
        // First responses after 0.5, 2 and 7 days: the median is 2.
        assert_eq!(dpi.median_days_to_first_response, Some(2.0));
        assert_eq!(stats[1].median_days_to_first_response, Some(1.0));
        assert!(response_stats(&[fact("x", 1, "A", "resolved", "yesterday", "today")]).is_err());
    }
}
