//! The projector's SQL, one function per statement, each written once for both stores.
//!
//! The two sqlx drivers have different connection types but take the same SQL text (`$n`
//! binds work on SQLite too), so each function matches on [`Conn`] and runs the same body in
//! both arms through [`on_conn!`]. Only the checkpoint lock and the commit-order read differ
//! between the stores, and those are named constants below.
//!
//! About 530 lines: the projector's whole vocabulary of statements, kept in one file so an
//! index or a schema change is checked against every statement that uses the table.

use std::collections::HashMap;

use crate::cells::Published;
use crate::cells::{self, CellKey, GroupKey, Placed};
use crate::observations::ProfileColumns;
use crate::observations::ReportColumns;
use crate::StoreError;
use futures::TryStreamExt;
use redtape_domain::procedure_terms::ProcedureTimeline;

pub(crate) use crate::db::{on_conn, Conn};

/// Name of the checkpoint row of the read models.
pub const OBSERVATIONS: &str = "observations";

pub(crate) use crate::event_log::LoggedEvent;

/// PostgreSQL: the checkpoint row locked, so concurrent projectors (replicas, the CLI)
/// serialize. SQLite: the transaction is `BEGIN IMMEDIATE`, which already serializes them,
/// so locking it is reading it.
const PG_LOCK: &str = "SELECT txid, position FROM projector_checkpoints WHERE name = $1 FOR UPDATE";
const READ: &str = "SELECT txid, position FROM projector_checkpoints WHERE name = $1";
const SAVE: &str = "UPDATE projector_checkpoints SET txid = $2, position = $3 WHERE name = $1";

/// PostgreSQL: only rows of transactions older than the oldest one still running, in
/// (txid, position) order, so a slow transaction's events are never skipped.
pub(crate) const PG_NEXT: &str = "SELECT txid, position, aggregate_type, aggregate_id, \
    sequence, event_type, payload::text AS payload FROM events \
    WHERE (txid, position) > ($1, $2) \
      AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
    ORDER BY txid, position LIMIT $3";

/// SQLite: one writer, so `event_log.position` order is commit order.
pub(crate) const LITE_NEXT: &str = "SELECT 0 AS txid, l.position AS position, \
    e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.payload FROM event_log l \
    JOIN events e ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id \
     AND e.sequence = l.sequence \
    WHERE l.position > $2 AND $1 = 0 ORDER BY l.position LIMIT $3";

/// Locks (PostgreSQL) and reads the checkpoint.
pub(crate) async fn lock_checkpoint(conn: &mut Conn<'_>) -> Result<(i64, i64), StoreError> {
    let lock = match conn {
        Conn::Pg(_) => PG_LOCK,
        Conn::Lite(_) => READ,
    };
    Ok(on_conn!(conn, c, DB => sqlx::query_as(lock).bind(OBSERVATIONS).fetch_one(c).await)?)
}

/// Reads the checkpoint without locking it (in a read-only snapshot).
pub(crate) async fn read_checkpoint(conn: &mut Conn<'_>) -> Result<(i64, i64), StoreError> {
    Ok(on_conn!(conn, c, DB => sqlx::query_as(READ).bind(OBSERVATIONS).fetch_one(c).await)?)
}

pub(crate) async fn save_checkpoint(
    conn: &mut Conn<'_>,
    checkpoint: (i64, i64),
) -> Result<(), StoreError> {
    on_conn!(conn, c, DB => sqlx::query(SAVE)
        .bind(OBSERVATIONS)
        .bind(checkpoint.0)
        .bind(checkpoint.1)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Up to `limit` events after `checkpoint`, in commit order.
pub(crate) async fn next_events(
    conn: &mut Conn<'_>,
    checkpoint: (i64, i64),
    limit: i64,
) -> Result<Vec<LoggedEvent>, StoreError> {
    let next = match conn {
        Conn::Pg(_) => PG_NEXT,
        Conn::Lite(_) => LITE_NEXT,
    };
    Ok(on_conn!(conn, c, DB => sqlx::query_as(next)
        .bind(checkpoint.0)
        .bind(checkpoint.1)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// A new observation row, as the projector writes it.
pub(crate) struct NewRow<'a> {
    pub id: &'a str,
    pub status: &'static str,
    pub filer: &'a str,
    pub intermediary: Option<&'a str>,
    pub profile: &'a ProfileColumns,
    pub columns: &'a ReportColumns,
    pub amendments: i32,
    pub filed_at: &'a str,
    pub updated_at: &'a str,
    pub last_sequence: i64,
}

/// The observation columns of a multi-row insert, in `push_values` order.
const INSERT_OBSERVATIONS: &str = "INSERT INTO observations (submission_id, status, filer_id, \
    kind, procedure_code, geography, province_code, province_vn34, year, submitted_on, \
    completed_on, experienced_on, outcome, channel, categories, official_fees, \
    unofficial_payments, external_services, staff_hours, visits, amendments, filed_at, \
    updated_at, last_sequence, intermediary_id, size_class, sector_section, woman_owned, \
    ethnic_minority_owned) ";

/// Observation rows per multi-row insert (29 binds each: 29,000 binds, below SQLite's 32,766
/// and PostgreSQL's 65,535).
const ROWS_PER_INSERT: usize = 1000;

/// Inserts new observation rows, many per statement. A row that exists already is left
/// alone (an event is never applied twice; the checkpoint makes that impossible anyway).
///
/// PostgreSQL gets the rows as arrays through `unnest`: one statement text whatever the
/// batch size, parsed and planned once per connection (as the writer's, see
/// `crate::writer`); SQLite gets a multi-row VALUES.
pub(crate) async fn insert_observations(
    conn: &mut Conn<'_>,
    rows: &[NewRow<'_>],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        match conn {
            Conn::Pg(c) => {
                let sql = format!(
                    "{INSERT_OBSERVATIONS} SELECT * FROM unnest($1::text[], $2::text[], \
                     $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
                     $9::int[], $10::date[], $11::date[], $12::date[], $13::text[], $14::text[], \
                     $15::text[], $16::bigint[], $17::bigint[], $18::bigint[], $19::float8[], \
                     $20::int[], $21::int[], $22::text[], $23::text[], $24::bigint[], $25::text[], $26::text[], $27::text[], $28::bool[], \
                     $29::bool[]) \
                     ON CONFLICT (submission_id) DO NOTHING"
                );
                sqlx::query(&sql)
                    .bind(column(chunk, |o| o.id))
                    .bind(column(chunk, |o| o.status))
                    .bind(column(chunk, |o| o.filer))
                    .bind(column(chunk, |o| o.columns.kind))
                    .bind(column(chunk, |o| o.columns.procedure_code.as_str()))
                    .bind(column(chunk, |o| o.columns.geography))
                    .bind(column(chunk, |o| o.columns.province_code.as_str()))
                    .bind(column(chunk, |o| o.columns.province_vn34.as_str()))
                    .bind(column(chunk, |o| o.columns.year))
                    .bind(column(chunk, |o| o.columns.submitted_on))
                    .bind(column(chunk, |o| o.columns.completed_on))
                    .bind(column(chunk, |o| o.columns.experienced_on))
                    .bind(column(chunk, |o| o.columns.outcome))
                    .bind(column(chunk, |o| o.columns.channel))
                    .bind(column(chunk, |o| o.columns.categories.as_deref()))
                    .bind(column(chunk, |o| o.columns.official_fees))
                    .bind(column(chunk, |o| o.columns.unofficial_payments))
                    .bind(column(chunk, |o| o.columns.external_services))
                    .bind(column(chunk, |o| o.columns.staff_hours))
                    .bind(column(chunk, |o| o.columns.visits))
                    .bind(column(chunk, |o| o.amendments))
                    .bind(column(chunk, |o| o.filed_at))
                    .bind(column(chunk, |o| o.updated_at))
                    .bind(column(chunk, |o| o.last_sequence))
                    .bind(column(chunk, |o| o.intermediary))
                    .bind(column(chunk, |o| o.profile.size_class.as_deref()))
                    .bind(column(chunk, |o| o.profile.sector_section.as_deref()))
                    .bind(column(chunk, |o| o.profile.woman_owned))
                    .bind(column(chunk, |o| o.profile.ethnic_minority_owned))
                    .execute(&mut **c)
                    .await?;
            }
            Conn::Lite(c) => {
                let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(INSERT_OBSERVATIONS);
                insert.push_values(chunk, |mut row, o| {
                    row.push_bind(o.id).push_bind(o.status).push_bind(o.filer);
                    crate::bind_report!(row, o.columns, push_bind)
                        .push_bind(o.amendments)
                        .push_bind(o.filed_at)
                        .push_bind(o.updated_at)
                        .push_bind(o.last_sequence)
                        .push_bind(o.intermediary)
                        .push_bind(o.profile.size_class.as_deref())
                        .push_bind(o.profile.sector_section.as_deref())
                        .push_bind(o.profile.woman_owned)
                        .push_bind(o.profile.ethnic_minority_owned);
                });
                insert.push(" ON CONFLICT (submission_id) DO NOTHING");
                insert.build().execute(&mut **c).await?;
            }
        }
    }
    Ok(())
}

/// One column of rows, as an array to bind.
fn column<'a, R, T>(rows: &'a [R], f: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(f).collect()
}

/// What the cells need of one observation row; `None` if there is no such row.
pub(crate) async fn placed(conn: &mut Conn<'_>, id: &str) -> Result<Option<Placed>, StoreError> {
    let sql = format!("{} WHERE submission_id = $1", cells::SELECT_PLACED);
    Ok(on_conn!(conn, c, DB => sqlx::query_as(&sql).bind(id).fetch_optional(c).await)?)
}

/// Applies an amendment to a row; false if the row is absent or already past `sequence`.
pub(crate) async fn amend(
    conn: &mut Conn<'_>,
    id: &str,
    columns: &ReportColumns,
    at: &str,
    sequence: i64,
) -> Result<bool, StoreError> {
    let done = on_conn!(conn, c, DB => {
        let query = sqlx::query(crate::observations::AMEND).bind(id);
        crate::bind_report!(query, columns).bind(at).bind(sequence).execute(c).await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Sets a row's status; false if the row is absent or already past `sequence`.
pub(crate) async fn set_status(
    conn: &mut Conn<'_>,
    id: &str,
    status: &str,
    at: &str,
    sequence: i64,
) -> Result<bool, StoreError> {
    let done = on_conn!(conn, c, DB => sqlx::query(crate::observations::SET_STATUS)
        .bind(id)
        .bind(status)
        .bind(at)
        .bind(sequence)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// A row of the `responses` read model.
pub(crate) async fn insert_response(
    conn: &mut Conn<'_>,
    id: &str,
    sequence: i64,
    agency: &str,
    status: &str,
    at: &str,
) -> Result<(), StoreError> {
    on_conn!(conn, c, DB => sqlx::query(crate::observations::INSERT_RESPONSE)
        .bind(id)
        .bind(sequence)
        .bind(agency)
        .bind(status)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A procedure's stored timeline and the sequence of its last applied event.
pub(crate) async fn procedure(
    conn: &mut Conn<'_>,
    code: &str,
) -> Result<Option<(ProcedureTimeline, i64)>, StoreError> {
    let row: Option<(String, i64)> = on_conn!(conn, c, DB => sqlx::query_as(
        "SELECT timeline, last_sequence FROM procedures WHERE code = $1")
        .bind(code)
        .fetch_optional(c)
        .await)?;
    row.map(|(json, seq)| {
        serde_json::from_str(&json)
            .map(|t| (t, seq))
            .map_err(|e| StoreError::Corrupt(format!("procedure {code}: {e}")))
    })
    .transpose()
}

/// Every procedure's timeline (the cells' statutory limits).
pub(crate) async fn timelines(
    conn: &mut Conn<'_>,
) -> Result<HashMap<String, ProcedureTimeline>, StoreError> {
    let rows: Vec<(String, String)> = on_conn!(conn, c, DB => sqlx::query_as(
        "SELECT code, timeline FROM procedures")
        .fetch_all(c)
        .await)?;
    rows.into_iter()
        .map(|(code, json)| {
            let timeline = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("procedure {code}: {e}")))?;
            Ok((code, timeline))
        })
        .collect()
}

pub(crate) async fn write_procedure(
    conn: &mut Conn<'_>,
    code: &str,
    timeline: &ProcedureTimeline,
    sequence: i64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(timeline).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    on_conn!(conn, c, DB => sqlx::query(
        "INSERT INTO procedures (code, name_vi, name_en, timeline, last_sequence) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO UPDATE SET \
         name_vi = excluded.name_vi, name_en = excluded.name_en, \
         timeline = excluded.timeline, last_sequence = excluded.last_sequence")
        .bind(code)
        .bind(&timeline.name_vi)
        .bind(&timeline.name_en)
        .bind(json)
        .bind(sequence)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Calls `each` with every included observation (of one procedure, or all), streamed: the
/// cells are loaded without holding every row at once.
pub(crate) async fn each_included(
    conn: &mut Conn<'_>,
    procedure: Option<&str>,
    mut each: impl FnMut(Placed),
) -> Result<u64, StoreError> {
    let mut sql = format!(
        "{} WHERE {}",
        cells::SELECT_PLACED,
        cells::included_sql("status")
    );
    if procedure.is_some() {
        sql.push_str(" AND procedure_code = $1");
    }
    let mut n = 0u64;
    on_conn!(conn, c, DB => {
        let mut query = sqlx::query_as::<DB, Placed>(&sql);
        if let Some(code) = procedure {
            query = query.bind(code);
        }
        let mut rows = query.fetch(c);
        while let Some(row) = rows.try_next().await? {
            each(row);
            n += 1;
        }
    });
    Ok(n)
}

/// Inserts or replaces cells, many per statement.
pub(crate) async fn write_cells(
    conn: &mut Conn<'_>,
    computed: &[Published],
) -> Result<(), StoreError> {
    for chunk in computed.chunks(cells::CHUNK) {
        match conn {
            // One statement text whatever the number of cells (see `insert_observations`).
            Conn::Pg(c) => {
                let as_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
                let sql = format!(
                    "{} SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], \
                     $5::int[], $6::int[], $7::int[], $8::int[], $9::int[], $10::float8[], \
                     $11::float8[], $12::float8[], $13::float8[], $14::float8[], $15::float8[], \
                     $16::float8[], $17::float8[], $18::float8[], $19::float8[], $20::text[], \
                     $21::int[], $22::text[], $23::int[]){}",
                    cells::INSERT,
                    cells::ON_CONFLICT
                );
                sqlx::query(&sql)
                    .bind(column(chunk, |(k, _, _)| k.0.as_str()))
                    .bind(column(chunk, |(k, _, _)| k.1))
                    .bind(column(chunk, |(k, _, _)| k.2.as_str()))
                    .bind(column(chunk, |(k, _, _)| k.3.as_str()))
                    .bind(column(chunk, |(_, s, _)| as_i32(s.n)))
                    .bind(column(chunk, |(_, s, _)| as_i32(s.n_timings)))
                    .bind(column(chunk, |(_, s, _)| as_i32(s.n_pending)))
                    .bind(column(chunk, |(_, s, _)| as_i32(s.n_complaints)))
                    .bind(column(chunk, |(_, s, _)| i32::from(s.suppressed)))
                    .bind(column(chunk, |(_, s, _)| s.median_days))
                    .bind(column(chunk, |(_, s, _)| s.p90_days))
                    .bind(column(chunk, |(_, s, _)| s.median_days_ci.map(|c| c.low)))
                    .bind(column(chunk, |(_, s, _)| s.median_days_ci.map(|c| c.high)))
                    .bind(column(chunk, |(_, s, _)| s.median_cost))
                    .bind(column(chunk, |(_, s, _)| s.median_cost_ci.map(|c| c.low)))
                    .bind(column(chunk, |(_, s, _)| s.median_cost_ci.map(|c| c.high)))
                    .bind(column(chunk, |(_, s, _)| s.median_visits))
                    .bind(column(chunk, |(_, s, _)| s.on_time_rate))
                    .bind(column(chunk, |(_, s, _)| s.informal_payment_rate))
                    .bind(column(chunk, |_| redtape_index::METHODOLOGY_VERSION))
                    .bind(column(chunk, |(_, s, _)| as_i32(s.n_verified)))
                    .bind(column(chunk, |(_, s, _)| s.suppression.map(|s| s.as_str())))
                    .bind(column(chunk, |(_, _, due)| i32::from(*due)))
                    .execute(&mut **c)
                    .await?;
            }
            Conn::Lite(c) => {
                let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(cells::INSERT);
                insert.push_values(chunk, |mut row, (key, stats, due)| {
                    cells::bind_cell!(row, key, stats).push_bind(i32::from(*due));
                });
                insert.push(cells::ON_CONFLICT);
                insert.build().execute(&mut **c).await?;
            }
        }
    }
    Ok(())
}

/// The cells published with intervals due a refresh.
pub(crate) async fn cells_with_due_intervals(
    conn: &mut Conn<'_>,
) -> Result<std::collections::BTreeSet<CellKey>, StoreError> {
    let rows: Vec<CellKey> = on_conn!(conn, c, DB => sqlx::query_as(
        "SELECT geography, year, procedure_code, province_code FROM index_cells \
         WHERE intervals_due = 1")
        .fetch_all(c)
        .await)?;
    Ok(rows.into_iter().collect())
}

/// Removes a cell that no longer has any included observation.
pub(crate) async fn delete_cell(conn: &mut Conn<'_>, key: &CellKey) -> Result<(), StoreError> {
    on_conn!(conn, c, DB => sqlx::query(cells::DELETE)
        .bind(&key.0)
        .bind(key.1)
        .bind(&key.2)
        .bind(&key.3)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes one province's CBI row of a group, or all of them.
pub(crate) async fn delete_cbi(
    conn: &mut Conn<'_>,
    group: &GroupKey,
    province: Option<&str>,
) -> Result<(), StoreError> {
    let sql = match province {
        Some(_) => format!("{} AND province_code = $4", cells::DELETE_CBI),
        None => cells::DELETE_CBI.to_string(),
    };
    on_conn!(conn, c, DB => {
        let mut query = sqlx::query(&sql).bind(&group.0).bind(group.1).bind(&group.2);
        if let Some(province) = province {
            query = query.bind(province);
        }
        query.execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Writes CBI rows (group, row), replacing those of the same province.
pub(crate) async fn upsert_cbi(
    conn: &mut Conn<'_>,
    rows: &[(GroupKey, cells::CbiRow)],
) -> Result<(), StoreError> {
    const CONFLICT: &str = " ON CONFLICT (geography, year, procedure_code, province_code) \
        DO UPDATE SET cbi = excluded.cbi, cbi_rank = excluded.cbi_rank, \
        score_days = excluded.score_days, score_cost = excluded.score_cost, \
        score_informal = excluded.score_informal, score_on_time = excluded.score_on_time";
    // 10 binds per row.
    for chunk in rows.chunks(cells::CHUNK) {
        match conn {
            // One statement text whatever the number of rows (see `insert_observations`).
            Conn::Pg(c) => {
                let sql = format!(
                    "{} SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], \
                     $5::float8[], $6::int[], $7::float8[], $8::float8[], $9::float8[], \
                     $10::float8[]){CONFLICT}",
                    cells::INSERT_CBI
                );
                sqlx::query(&sql)
                    .bind(column(chunk, |(g, _)| g.0.as_str()))
                    .bind(column(chunk, |(g, _)| g.1))
                    .bind(column(chunk, |(g, _)| g.2.as_str()))
                    .bind(column(chunk, |(_, r)| r.province.as_str()))
                    .bind(column(chunk, |(_, r)| r.cbi))
                    .bind(column(chunk, |(_, r)| r.rank))
                    .bind(column(chunk, |(_, r)| r.scores[0]))
                    .bind(column(chunk, |(_, r)| r.scores[1]))
                    .bind(column(chunk, |(_, r)| r.scores[2]))
                    .bind(column(chunk, |(_, r)| r.scores[3]))
                    .execute(&mut **c)
                    .await?;
            }
            Conn::Lite(c) => {
                let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(cells::INSERT_CBI);
                insert.push_values(chunk, |mut row, (group, r)| {
                    row.push_bind(&group.0)
                        .push_bind(group.1)
                        .push_bind(&group.2)
                        .push_bind(&r.province)
                        .push_bind(r.cbi)
                        .push_bind(r.rank)
                        .push_bind(r.scores[0])
                        .push_bind(r.scores[1])
                        .push_bind(r.scores[2])
                        .push_bind(r.scores[3]);
                });
                insert.push(CONFLICT);
                insert.build().execute(&mut **c).await?;
            }
        }
    }
    Ok(())
}

/// The groups with a CBI row written before its scores were stored (migration 0011): a
/// stored CBI averages at least one score, so a row with none is such a row.
pub(crate) async fn groups_without_scores(
    conn: &mut Conn<'_>,
) -> Result<Vec<GroupKey>, StoreError> {
    const SQL: &str = "SELECT DISTINCT geography, year, procedure_code FROM index_cbi \
        WHERE score_days IS NULL AND score_cost IS NULL AND score_informal IS NULL \
        AND score_on_time IS NULL ORDER BY geography, year, procedure_code";
    Ok(on_conn!(conn, c, DB => sqlx::query_as(SQL).fetch_all(c).await)?)
}

/// What the CBI needs of each stored cell of a group, in province order.
pub(crate) async fn group_rows(
    conn: &mut Conn<'_>,
    group: &GroupKey,
) -> Result<Vec<cells::GroupRow>, StoreError> {
    let sql = format!(
        "SELECT province_code, suppressed, median_days, median_cost, informal_payment_rate, \
         on_time_rate FROM index_cells WHERE geography = $1 AND year = $2 \
         AND procedure_code = $3 AND {} ORDER BY province_code",
        cells::PROVINCE_ONLY_SQL
    );
    Ok(on_conn!(conn, c, DB => sqlx::query_as(&sql)
        .bind(&group.0).bind(group.1).bind(&group.2).fetch_all(c).await)?)
}
