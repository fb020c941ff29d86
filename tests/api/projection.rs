//! The live projector's cells, kept incrementally (issue 10), equal a full recompute after a
//! long randomized sequence of filings, amendments that move observations between cells,
//! withdrawals, rejections, verifications and reforms; and `/readyz` reports the lag.

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// splitmix64: a seeded sequence, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const PROCEDURES: [&str; 3] = ["1.001612", "2.001199", "1.009972"];
const VN34: [&str; 4] = ["79", "01", "48", "31"];
const VN63: [&str; 4] = ["79", "01", "27", "48"];

/// A filed submission the sequence may change later.
struct Filed {
    id: String,
    token: usize,
    timing: bool,
    /// On the old map (dated 2024).
    old_map: bool,
    /// Withdrawn or rejected: takes no further change.
    closed: bool,
    /// Verified since its last amendment.
    verified: bool,
}

fn timing_body(rng: &mut Rng) -> (Value, bool) {
    let old_map = rng.below(4) == 0;
    let (province, month, year) = if old_map {
        (*rng.pick(&VN63), 3 + rng.below(6), 2024)
    } else {
        (*rng.pick(&VN34), 7 + rng.below(4), 2025)
    };
    let day = 1 + rng.below(20);
    let mut body = json!({
        "procedure_code": *rng.pick(&PROCEDURES),
        "province_code": province,
        "submitted_on": format!("{year}-{month:02}-{day:02}"),
        "channel": "online",
        "costs": {"official_fees": 1000 * rng.below(200) as i64},
        "visits": rng.below(5) as i64,
    });
    if rng.below(6) != 0 {
        body["completed_on"] = json!(format!("{year}-{:02}-{:02}", month + 1, 1 + rng.below(27)));
        body["outcome"] = json!("granted");
    }
    if rng.below(5) != 0 {
        body["staff_hours"] = json!(rng.below(40) as f64 / 4.0);
    }
    if rng.below(7) == 0 {
        body["costs"]["unofficial_payments"] = json!(100_000 * (1 + rng.below(20)) as i64);
    }
    (body, old_map)
}

fn complaint_body(rng: &mut Rng) -> Value {
    json!({
        "procedure_code": *rng.pick(&PROCEDURES),
        "province_code": *rng.pick(&VN34),
        "experienced_on": format!("2025-09-{:02}", 1 + rng.below(28)),
        "categories": ["delay"],
        "narrative": "Randomized test complaint.",
        "costs": {"unofficial_payments": 50_000 * rng.below(3) as i64},
        "staff_hours": rng.below(20) as f64,
        "visits": rng.below(6) as i64,
    })
}

/// An amendment that moves the observation to another cell (province, or completion year)
/// or changes what it measures.
fn amendment(rng: &mut Rng, filed: &Filed) -> Value {
    let changes = match (filed.timing, rng.below(4)) {
        (_, 0) => {
            json!({"province_code": if filed.old_map { *rng.pick(&VN63) } else { *rng.pick(&VN34) }})
        }
        (true, 1) if !filed.old_map => {
            // Completed next year: the observation moves to a 2026 cell.
            json!({"completed_on": format!("2026-01-{:02}", 5 + rng.below(20)), "outcome": "granted"})
        }
        (_, 2) => json!({"costs": {"official_fees": 1000 * rng.below(500) as i64}}),
        _ => json!({"visits": rng.below(9) as i64, "staff_hours": rng.below(30) as f64 / 2.0}),
    };
    json!({"reason": "randomized correction", "changes": changes})
}

async fn incremental_cells_equal_a_full_recompute(app: &TestApp) {
    let mut rng = Rng(20_261_201);
    let businesses: Vec<String> = {
        let mut tokens = Vec::new();
        for _ in 0..8 {
            tokens.push(app.token(Role::Business).await);
        }
        tokens
    };
    let officer = app.token(Role::Officer).await;
    let mut filed: Vec<Filed> = Vec::new();
    let mut reform_month = [7u32; 3];
    let mut counts = [0usize; 7];
    for step in 0..420 {
        let roll = rng.below(100);
        let open: Vec<usize> = (0..filed.len()).filter(|i| !filed[*i].closed).collect();
        if roll < 45 || open.is_empty() {
            let token = rng.below(businesses.len());
            let (reply, timing, old_map) = if rng.below(5) == 0 {
                let reply = app
                    .post(
                        "/v1/complaints",
                        &businesses[token],
                        &complaint_body(&mut rng),
                    )
                    .await;
                (reply, false, false)
            } else {
                let (body, old_map) = timing_body(&mut rng);
                (
                    app.post("/v1/timings", &businesses[token], &body).await,
                    true,
                    old_map,
                )
            };
            let created = reply.expect(201);
            filed.push(Filed {
                id: created["id"].as_str().unwrap_or_default().to_string(),
                token,
                timing,
                old_map,
                closed: false,
                verified: false,
            });
            counts[0] += 1;
            continue;
        }
        let i = *rng.pick(&open);
        let path = |what: &str| format!("/v1/submissions/{}/{what}", filed[i].id);
        match roll {
            45..=64 => {
                let body = amendment(&mut rng, &filed[i]);
                let reply = app
                    .post(&path("amendments"), &businesses[filed[i].token], &body)
                    .await;
                if reply.status == 422 {
                    // A random value may happen to be the current one.
                    let refused = vec![("/changes".to_string(), "no_change".to_string())];
                    assert_eq!(reply.violations(), refused);
                } else {
                    reply.expect(200);
                    filed[i].verified = false;
                    counts[1] += 1;
                }
            }
            65..=72 => {
                app.post(&path("withdrawal"), &businesses[filed[i].token], &json!({}))
                    .await
                    .expect(200);
                filed[i].closed = true;
                counts[2] += 1;
            }
            73..=86 if !filed[i].verified => {
                app.post(&path("verification"), &officer, &json!({}))
                    .await
                    .expect(200);
                filed[i].verified = true;
                counts[3] += 1;
            }
            73..=86 => {
                // Verified already: a second verification is refused and changes nothing.
                app.post(&path("verification"), &officer, &json!({}))
                    .await
                    .problem(409);
            }
            87..=93 => {
                app.post(
                    &path("rejection"),
                    &officer,
                    &json!({"reason": "implausible"}),
                )
                .await
                .expect(200);
                filed[i].closed = true;
                counts[4] += 1;
            }
            _ => {
                // A reform: new terms change the on-time verdict of the procedure's cells.
                let p = rng.below(PROCEDURES.len());
                if reform_month[p] < 11 {
                    reform_month[p] += 1;
                    let reform = json!({
                        "effective_from": format!("2025-{:02}-01", reform_month[p]),
                        "statutory_working_days": 1 + rng.below(15),
                        "official_fee_vnd": 0,
                        "legal_basis": format!("Randomized reform {step}"),
                    });
                    app.post(
                        &format!("/v1/procedures/{}/reforms", PROCEDURES[p]),
                        &officer,
                        &reform,
                    )
                    .await
                    .expect(200);
                    counts[5] += 1;
                }
            }
        }
        if step % 60 == 59 {
            // Readers in between: the live state must not be disturbed by them.
            app.get("/v1/indices?year=2025", None).await.expect(200);
            counts[6] += 1;
        }
    }
    assert!(
        counts[..5].iter().all(|n| *n > 10) && counts[5] >= 3,
        "the sequence exercises every kind of change: {counts:?}"
    );

    // The server's own projector, which kept its cells incrementally all along, catches up.
    let lag = settled(app).await;
    assert_eq!(lag["lag_events"], 0, "{lag}");
    assert_eq!(lag["lag_seconds"], 0.0, "{lag}");
    let incremental = crate::rebuild::all_cells(app).await;
    assert!(incremental.len() >= 30, "{} cells", incremental.len());
    assert!(incremental.iter().any(|c| c.geography == "vn-63"));
    assert!(incremental.iter().any(|c| c.year == 2026));
    assert!(incremental
        .iter()
        .any(|c| c.suppressed == 0 && c.cbi.is_some()));
    assert!(incremental.iter().any(|c| c.n_verified > 0));

    equals_a_full_recompute(app, &incremental).await;
}

/// Changes sent all at once around reforms share the projector's batches: it stops a batch
/// before each reform, prepares the reformed procedure's cells from a read-only snapshot,
/// and applies the rest of the batch (amendments moving observations in and out of that
/// procedure, new filings) to them; another projector moving the checkpoint meanwhile makes
/// it load its state again from a snapshot. The cells still equal a full recompute.
async fn reforms_amid_a_burst_equal_a_full_recompute(app: &TestApp) {
    let mut rng = Rng(20_261_202);
    let mut businesses = Vec::new();
    for _ in 0..8 {
        businesses.push(app.token(Role::Business).await);
    }
    let officer = app.token(Role::Officer).await;
    let mut filed = Vec::new();
    for i in 0..48 {
        let (body, old_map) = timing_body(&mut rng);
        let token = i % businesses.len();
        let created = app
            .post("/v1/timings", &businesses[token], &body)
            .await
            .expect(201);
        filed.push(Filed {
            id: created["id"].as_str().unwrap_or_default().to_string(),
            token,
            timing: true,
            old_map,
            closed: false,
            verified: false,
        });
    }
    settled(app).await;
    let before = crate::rebuild::all_cells(app).await;

    // The burst: an amendment of every filing, 24 new filings and one reform of each
    // procedure, interleaved, all in flight together.
    let mut requests: Vec<(String, String, Value)> = Vec::new();
    for (i, f) in filed.iter().enumerate() {
        let path = format!("/v1/submissions/{}/amendments", f.id);
        requests.push((path, businesses[f.token].clone(), amendment(&mut rng, f)));
        if i % 2 == 0 {
            let (body, _) = timing_body(&mut rng);
            requests.push(("/v1/timings".into(), businesses[i % 8].clone(), body));
        }
        if i % 16 == 8 {
            let reform = json!({
                "effective_from": "2025-06-01",
                "statutory_working_days": 1 + rng.below(5),
                "official_fee_vnd": 0,
                "legal_basis": format!("Burst reform {i}"),
            });
            let path = format!("/v1/procedures/{}/reforms", PROCEDURES[i / 16]);
            requests.push((path, officer.clone(), reform));
        }
    }
    let sent = requests
        .iter()
        .map(|(path, token, body)| app.post(path, token, body));
    let (replies, ()) = futures::join!(futures::future::join_all(sent), app.project());
    let mut statuses = std::collections::BTreeMap::new();
    for (reply, (path, _, _)) in replies.iter().zip(&requests) {
        let kind = path.rsplit('/').next().unwrap_or_default().to_string();
        // 422: a random amendment may repeat the current value.
        assert!(
            [200, 201].contains(&reply.status) || (kind == "amendments" && reply.status == 422),
            "{path}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        *statuses.entry((kind, reply.status)).or_insert(0) += 1;
    }
    assert_eq!(statuses[&("reforms".to_string(), 200)], 3, "{statuses:?}");
    assert_eq!(statuses[&("timings".to_string(), 201)], 24, "{statuses:?}");
    assert!(
        statuses[&("amendments".to_string(), 200)] >= 40,
        "{statuses:?}"
    );

    let lag = settled(app).await;
    assert_eq!(lag["lag_events"], 0, "{lag}");
    let incremental = crate::rebuild::all_cells(app).await;
    assert_ne!(incremental, before, "the burst changed the cells");
    equals_a_full_recompute(app, &incremental).await;
}

/// Rebuilds the read models from the log and checks that every cell comes out as
/// `incremental`, the cells the live projector kept.
async fn equals_a_full_recompute(app: &TestApp, incremental: &[redtape_store::cells::CellRecord]) {
    redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap_or_else(|e| panic!("rebuild: {e}"));
    let recomputed = crate::rebuild::all_cells(app).await;
    assert_eq!(recomputed.len(), incremental.len());
    for (a, b) in incremental.iter().zip(&recomputed) {
        assert_eq!(
            a, b,
            "an incrementally kept cell differs from the full recompute"
        );
    }
}

/// Waits until the server's projector has applied every event and refreshed every interval
/// it put off; returns `/readyz`'s projection object.
async fn settled(app: &TestApp) -> Value {
    for _ in 0..200 {
        let ready = app.get("/readyz", None).await.expect(200);
        let due: (i64,) = redtape_store::on_pool!(&app.db, pool => sqlx::query_as(
            "SELECT count(*) FROM index_cells WHERE intervals_due = 1")
            .fetch_one(pool).await)
        .unwrap_or_else(|e| panic!("{e}"));
        if ready["projection"]["lag_events"] == 0 && due.0 == 0 {
            return ready["projection"].clone();
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the projector did not settle within 10 s");
}

/// A backlog shows in `/readyz` as events and seconds, and goes back to zero once projected.
async fn readyz_reports_the_lag(app: &TestApp) {
    let settled_before = settled(app).await;
    assert_eq!(settled_before["lag_events"], 0);
    // Events appended in bulk do not wake the server's projector (it polls every 500 ms), and
    // 5,000 of them take it several batches: the backlog is visible meanwhile.
    let catalogue = std::sync::Arc::new(redtape_store::Catalogue::new());
    catalogue
        .reload(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let submissions = redtape_store::Submissions::new(
        &app.db,
        redtape_domain::submission::SubmissionServices {
            procedures: catalogue,
            amendment_window_days: 90,
        },
        std::sync::Arc::new(tokio::sync::Notify::new()),
    );
    let draft: redtape_domain::submission::TimingDraft =
        serde_json::from_value(crate::helpers::timing()).unwrap_or_else(|e| panic!("{e}"));
    let filer = redtape_domain::submission::FilerId(uuid::Uuid::now_v7());
    let batch = (0..5000)
        .map(|_| {
            let command = redtape_domain::submission::SubmissionCommand::ReportTiming {
                filer,
                draft: draft.clone(),
                at: chrono::Utc::now(),
                profile: Default::default(),
                intermediary: None,
            };
            (uuid::Uuid::now_v7().to_string(), vec![command])
        })
        .collect();
    let appended = submissions
        .import(batch, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(appended, 5000);
    let behind = app.get("/readyz", None).await.expect(200);
    let lag = &behind["projection"];
    assert!(
        lag["lag_events"]
            .as_i64()
            .is_some_and(|n| n > 0 && n <= 5000),
        "{behind}"
    );
    assert!(
        lag["lag_seconds"]
            .as_f64()
            .is_some_and(|s| (0.0..60.0).contains(&s)),
        "{behind}"
    );
    assert_eq!(
        behind["status"], "ready",
        "a backlog does not make the service unready"
    );
    let caught_up = settled(app).await;
    assert_eq!(caught_up["lag_events"], 0);
    assert_eq!(caught_up["lag_seconds"], 0.0);
    let cell = app
        .get("/v1/indices?year=2025&procedure=1.001612&province=79", None)
        .await
        .expect(200);
    assert_eq!(
        cell["items"][0]["n"], 5000,
        "every imported timing is in its cell"
    );
}

crate::on_both_stores!(
    incremental_cells_equal_a_full_recompute,
    reforms_amid_a_burst_equal_a_full_recompute,
    readyz_reports_the_lag
);
