//! Reads for the reform-office workflow: the moderation queue, a filer's daily count (the
//! abuse cap) and the published response statistics. All from read models the projector
//! maintains (`observations`, `responses`).

use chrono::{DateTime, Utc};
use redtape_domain::Scope;
use redtape_index::responses::Response;

use crate::db::Db;
use crate::StoreError;

/// Which submissions the queue lists.
#[derive(Debug, Clone)]
pub struct QueueFilter {
    /// `None`: every status (a filer's own list).
    pub status: Option<&'static str>,
    /// A `vn-34` province code.
    pub province: Option<String>,
    pub procedure: Option<String>,
    pub year: Option<i32>,
    /// Only the submissions filed for this filer (a business's own list).
    pub filer: Option<String>,
    /// Only the submissions this intermediary filed for its members.
    pub intermediary: Option<String>,
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
    pub filer_id: String,
    pub intermediary_id: Option<String>,
    /// The status of the latest government response, if any.
    pub latest_response: Option<String>,
}

/// The queue, oldest first (by filing time, then id, so the order is total and a cursor
/// never skips or repeats a row).
pub async fn queue(db: &Db, filter: &QueueFilter) -> Result<Vec<QueueRow>, StoreError> {
    macro_rules! build {
        ($database:ty) => {{
            let mut q = sqlx::QueryBuilder::<$database>::new(
                "SELECT submission_id, kind, status, procedure_code, geography, province_code, \
                 province_vn34, year, amendments, filed_at, updated_at, filer_id, \
                 intermediary_id, (SELECT r.status FROM responses r \
                  WHERE r.submission_id = observations.submission_id \
                  ORDER BY r.sequence DESC LIMIT 1) AS latest_response \
                 FROM observations WHERE 1 = 1",
            );
            if let Some(status) = filter.status {
                q.push(" AND status = ").push_bind(status);
            }
            if let Some(year) = filter.year {
                q.push(" AND year = ").push_bind(year);
            }
            if let Some(filer) = &filter.filer {
                q.push(" AND filer_id = ").push_bind(filer.clone());
            }
            if let Some(intermediary) = &filter.intermediary {
                q.push(" AND intermediary_id = ")
                    .push_bind(intermediary.clone());
            }
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

/// One response row, with its submission's province and filing time, as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct ResponseRow {
    submission_id: String,
    agency: String,
    status: String,
    posted_at: String,
    province_vn34: String,
    filed_at: String,
}

/// Every response with its submission's province and filing time, in log order per
/// submission, for `redtape_index::responses::by_agency`. Optional filters on agency and
/// province.
pub async fn responses(
    db: &Db,
    agency: Option<&str>,
    province: Option<&str>,
) -> Result<Vec<Response>, StoreError> {
    let sql = "SELECT r.submission_id, r.agency, r.status, r.posted_at, \
               o.province_vn34, o.filed_at FROM responses r \
               JOIN observations o ON o.submission_id = r.submission_id \
               WHERE ($1 IS NULL OR r.agency = $1) AND ($2 IS NULL OR o.province_vn34 = $2) \
               ORDER BY r.agency, o.province_vn34, r.submission_id, r.sequence";
    let rows: Vec<ResponseRow> = crate::on_pool!(db, pool =>
        sqlx::query_as::<_, ResponseRow>(sql).bind(agency).bind(province).fetch_all(pool).await)?;
    rows.into_iter().map(response_of).collect()
}

fn response_of(row: ResponseRow) -> Result<Response, StoreError> {
    let parse = |text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("timestamp {text:?}: {e}")))
    };
    Ok(Response {
        filed_at: parse(&row.filed_at)?,
        posted_at: parse(&row.posted_at)?,
        submission: row.submission_id,
        agency: row.agency,
        province: row.province_vn34,
        status: row.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_response_is_read_with_its_times_or_refused_as_corrupt() {
        let row = |filed: &str| ResponseRow {
            submission_id: "a".into(),
            agency: "DPI".into(),
            status: "resolved".into(),
            posted_at: "2025-10-03T00:00:00.000000Z".into(),
            province_vn34: "79".into(),
            filed_at: filed.into(),
        };
        let read = response_of(row("2025-10-01T12:00:00.000000Z")).unwrap();
        assert_eq!((read.posted_at - read.filed_at).num_hours(), 36);
        assert_eq!(
            (read.agency.as_str(), read.province.as_str()),
            ("DPI", "79")
        );
        assert!(matches!(
            response_of(row("yesterday")),
            Err(StoreError::Corrupt(_))
        ));
    }
}
