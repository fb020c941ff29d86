//! The pgbench baseline on PostgreSQL: a durable single-row insert of an events-shaped row,
//! on the same database, for the ratio the filing scenario prints.

use super::*;

/// The pgbench script: one durable single-row insert of an events-shaped row. The JSON is
/// bound as parameters (`-D`, see [`PGBENCH_PAYLOAD`]) as the service binds it, and stays out
/// of the script, where pgbench would read `:name` inside it as a variable.
pub(super) const PGBENCH_SCRIPT: &str = "\\set id random(1, 9000000000000000000)\n\
    INSERT INTO pgbench_events (aggregate_type, aggregate_id, sequence, event_type, \
    event_version, payload, metadata) VALUES ('Submission', 'pgbench-' || :client_id || '-' || :id, \
    1, 'TimingReported', '1.0', :payload, :metadata);\n";

/// A timing's event as the service stores it (same fields and sizes as a hot-cell body).
pub(super) const PGBENCH_PAYLOAD: &str = r#"{"TimingReported":{"filed_at":"2026-12-01T04:43:54.033099Z","filer":"489ff253-d51b-cbe5-b5ea-8d36e9e22058","timing":{"channel":"online","completed_on":"2025-10-05","costs":{"external_services":500000,"official_fees":53000,"unofficial_payments":0},"outcome":"granted","procedure":"1.001612","province":{"code":"79","geography":"vn-34"},"staff_hours":2.5,"submitted_on":"2025-09-05","visits":1}}}"#;

/// The metadata the API records with it (api: submissions::metadata).
pub(super) const PGBENCH_METADATA: &str = r#"{"actor":"filer:489ff253-d51b-cbe5-b5ea-8d36e9e22058","idempotency_key":"019ad8a4-5f1e-7d3a-9b11-4c2f8e6a1d03","received_at":"2026-12-01T04:43:54.033099Z","request_id":"019ad8a4-5f1e-7d3a-9b11-4c2f8e6a1d02","token_id":"019ad8a4-5f1e-7d3a-9b11-4c2f8e6a1d01"}"#;

/// Runs pgbench on the bench's database and compares the rates; FAILs if pgbench cannot run.
pub(super) async fn pgbench(
    store: &'static str,
    url: &str,
    args: &BenchArgs,
    redtape_rate: f64,
) -> Check {
    match run_pgbench(url, args).await {
        Ok(tps) => {
            let ratio = format!(
                "; redtape/pgbench = {redtape_rate:.0}/{tps:.0} = {:.2}",
                redtape_rate / tps
            );
            Check::new(
                store,
                "pgbench",
                true,
                format!(
                    "{tps:.0} single-row inserts/s ({} clients, {} s){ratio}",
                    args.clients, args.pgbench_seconds
                ),
            )
        }
        Err(e) => Check::new(store, "pgbench", false, e),
    }
}

pub(super) async fn run_pgbench(url: &str, args: &BenchArgs) -> Result<f64, String> {
    let db = Db::connect(Some(url), &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let created = db::create_pgbench_events(&db).await;
    db.close().await;
    created.map_err(|e| format!("cannot create pgbench_events: {e}"))?;

    let path = std::env::temp_dir().join(format!("redtape-pgbench-{}.sql", uuid::Uuid::now_v7()));
    std::fs::write(&path, PGBENCH_SCRIPT).map_err(|e| format!("{}: {e}", path.display()))?;
    let command = [
        "-n".to_string(),
        "-M".into(),
        "prepared".into(),
        "-c".into(),
        args.clients.to_string(),
        "-j".into(),
        args.clients.min(2).to_string(),
        "-T".into(),
        args.pgbench_seconds.to_string(),
        "-D".into(),
        format!("payload={PGBENCH_PAYLOAD}"),
        "-D".into(),
        format!("metadata={PGBENCH_METADATA}"),
        "-f".into(),
        path.display().to_string(),
        url.to_string(),
    ];
    println!(
        "postgres: {} -n -M prepared -c {} -j {} -T {} -D payload=<a TimingReported event, {} \
         bytes> -D metadata=<its metadata, {} bytes> -f <one INSERT: docs/benchmarks.md> {url}",
        args.pgbench,
        args.clients,
        args.clients.min(2),
        args.pgbench_seconds,
        PGBENCH_PAYLOAD.len(),
        PGBENCH_METADATA.len()
    );
    let output = tokio::process::Command::new(&args.pgbench)
        .args(&command)
        .output()
        .await;
    let _ = std::fs::remove_file(&path);
    let output = output.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "pgbench not found ({:?}): install PostgreSQL's client tools or pass --pgbench PATH",
            args.pgbench
        ),
        _ => format!("cannot run {}: {e}", args.pgbench),
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| format!("no \"tps = \" line in pgbench's output: {stdout}"))
}

// ----------------------------------------------------------------------------------------
// Memory

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_script_uses_only_its_variables() {
        let vars: Vec<&str> = PGBENCH_SCRIPT
            .split(':')
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
            })
            .collect();
        assert_eq!(vars, ["client_id", "id", "payload", "metadata"]);
        for json in [PGBENCH_PAYLOAD, PGBENCH_METADATA] {
            serde_json::from_str::<serde_json::Value>(json).unwrap();
        }
    }
}
