//! PostgreSQL's rebuild of `observations`: the rows are copied into a fresh table with no
//! index, the indexes are built once over all of them, and the new table replaces the old at
//! commit (DESIGN.md: "replays the log into fresh tables and swaps them in").
//!
//! Deleting and re-inserting a million rows in place maintained four indexes row by row and
//! left a million dead tuples behind; and dropping the indexes for the load would have locked
//! readers out for the whole rebuild. Here readers keep reading the old table until the swap,
//! which only waits for the queries already running on it.

use std::fmt::Write as _;

use sqlx::PgConnection;

use super::sql::NewRow;
use crate::StoreError;

/// The columns of the COPY, in [`row`]'s order.
const COPY: &str = "COPY observations_rebuild (submission_id, status, filer_id, kind, \
    procedure_code, geography, province_code, province_vn34, year, submitted_on, completed_on, \
    experienced_on, outcome, channel, categories, official_fees, unofficial_payments, \
    external_services, staff_hours, visits, amendments, filed_at, updated_at, last_sequence, \
    intermediary_id, size_class, sector_section, woman_owned, ethnic_minority_owned) \
    FROM STDIN (FORMAT text)";

/// Bytes sent per COPY message.
const CHUNK: usize = 1 << 20;

/// Replaces `observations` with a table holding exactly `rows`, with the same columns,
/// constraints, indexes and names as the migrations made them.
pub(crate) async fn observations(
    conn: &mut PgConnection,
    rows: &[NewRow<'_>],
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = 'observations' ORDER BY indexname",
    )
    .fetch_all(&mut *conn)
    .await?;
    let primary: Option<(String,)> = sqlx::query_as(
        "SELECT conname::text FROM pg_constraint \
         WHERE conrelid = 'observations'::regclass AND contype = 'p'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query("DROP TABLE IF EXISTS observations_rebuild")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "CREATE TABLE observations_rebuild (LIKE observations \
         INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)",
    )
    .execute(&mut *conn)
    .await?;

    let mut copy = conn.copy_in_raw(COPY).await?;
    let mut buffer = String::with_capacity(CHUNK + 4096);
    for r in rows {
        row(&mut buffer, r);
        if buffer.len() >= CHUNK {
            copy.send(buffer.as_bytes()).await?;
            buffer.clear();
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer.as_bytes()).await?;
    }
    copy.finish().await?;
    tracing::debug!(rows = rows.len(), elapsed = ?started.elapsed(), "rows copied");

    for (name, definition) in &indexes {
        let create = renamed(definition, name).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "unexpected definition of index {name}: {definition}"
            ))
        })?;
        sqlx::query(&create).execute(&mut *conn).await?;
    }
    if let Some((constraint,)) = &primary {
        sqlx::query(&format!(
            "ALTER TABLE observations_rebuild ADD CONSTRAINT {constraint}_rebuild \
             PRIMARY KEY USING INDEX {constraint}_rebuild"
        ))
        .execute(&mut *conn)
        .await?;
    }
    tracing::debug!(elapsed = ?started.elapsed(), "indexes built");
    sqlx::query("DROP TABLE observations")
        .execute(&mut *conn)
        .await?;
    sqlx::query("ALTER TABLE observations_rebuild RENAME TO observations")
        .execute(&mut *conn)
        .await?;
    for (name, _) in &indexes {
        // Renaming a constraint's index renames the constraint too.
        sqlx::query(&format!("ALTER INDEX {name}_rebuild RENAME TO {name}"))
            .execute(&mut *conn)
            .await?;
    }
    // The planner's statistics went with the old table.
    sqlx::query("ANALYZE observations")
        .execute(&mut *conn)
        .await?;
    tracing::debug!(elapsed = ?started.elapsed(), "observations swapped in");
    Ok(())
}

/// `CREATE [UNIQUE] INDEX name ON schema.observations USING ...` as the same index, named
/// `name_rebuild`, on `observations_rebuild`.
fn renamed(definition: &str, name: &str) -> Option<String> {
    let (head, tail) = definition.split_once(" ON ")?;
    let head = head.strip_suffix(name)?;
    let (table, rest) = tail.split_once(" USING ")?;
    if !table.ends_with("observations") {
        return None;
    }
    Some(format!(
        "{head}{name}_rebuild ON {table}_rebuild USING {rest}"
    ))
}

/// Appends one row in COPY's text format.
fn row(out: &mut String, r: &NewRow<'_>) {
    let c = r.columns;
    text(out, Some(r.id));
    text(out, Some(r.status));
    text(out, Some(r.filer));
    text(out, Some(c.kind));
    text(out, Some(&c.procedure_code));
    text(out, Some(c.geography));
    text(out, Some(&c.province_code));
    text(out, Some(&c.province_vn34));
    value(out, Some(c.year));
    value(out, c.submitted_on);
    value(out, c.completed_on);
    value(out, c.experienced_on);
    text(out, c.outcome);
    text(out, c.channel);
    text(out, c.categories.as_deref());
    value(out, c.official_fees);
    value(out, c.unofficial_payments);
    value(out, c.external_services);
    // Display prints the shortest decimal that reads back to the same f64.
    value(out, c.staff_hours);
    value(out, c.visits);
    value(out, Some(r.amendments));
    text(out, Some(r.filed_at));
    text(out, Some(r.updated_at));
    value(out, Some(r.last_sequence));
    text(out, r.intermediary);
    text(out, r.profile.size_class.as_deref());
    text(out, r.profile.sector_section.as_deref());
    value(out, r.profile.woman_owned);
    value(out, r.profile.ethnic_minority_owned);
    // Every field above ends with a tab; the row ends with a newline instead.
    out.pop();
    out.push('\n');
}

fn value(out: &mut String, v: Option<impl std::fmt::Display>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str("\\N"),
    }
    out.push('\t');
}

fn text(out: &mut String, v: Option<&str>) {
    match v {
        Some(v) => {
            for ch in v.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    ch => out.push(ch),
                }
            }
        }
        None => out.push_str("\\N"),
    }
    out.push('\t');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_definitions_move_to_the_fresh_table() {
        assert_eq!(
            renamed(
                "CREATE INDEX observations_cell ON public.observations USING btree (year, procedure_code)",
                "observations_cell"
            )
            .as_deref(),
            Some("CREATE INDEX observations_cell_rebuild ON public.observations_rebuild USING btree (year, procedure_code)")
        );
        assert_eq!(
            renamed(
                "CREATE UNIQUE INDEX observations_pkey ON public.observations USING btree (submission_id)",
                "observations_pkey"
            )
            .as_deref(),
            Some("CREATE UNIQUE INDEX observations_pkey_rebuild ON public.observations_rebuild USING btree (submission_id)")
        );
        assert_eq!(
            renamed("CREATE INDEX x ON public.other USING btree (a)", "x"),
            None
        );
    }

    #[test]
    fn text_fields_are_escaped_and_nulls_marked() {
        let mut out = String::new();
        text(&mut out, Some("a\tb\\c\nd"));
        text(&mut out, None);
        value(&mut out, Some(6.5f64));
        value(&mut out, None::<i64>);
        assert_eq!(out, "a\\tb\\\\c\\nd\t\\N\t6.5\t\\N\t");
    }
}
