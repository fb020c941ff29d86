//! `redtape demo-data`: realistic submissions for a new user, filed through the same command
//! path as the API (the Submission and Procedure aggregates), so indices built on them behave
//! exactly as on real data.
//!
//! What it files: timings (about 80 %) and complaints over 2022 to today, provinces on the map
//! in force on each date (vn-63 before 2025-07-01, vn-34 after), elapsed times drawn around
//! each procedure's statutory limit with a per-province factor (so provinces differ), costs,
//! visits and some informal payments; then amendments (about 5 %), withdrawals (about 2 %),
//! and one reform, labelled DEMO DATA. The same `--seed` gives the same figures.
//!
//! It refuses to write into a store that already has submissions, unless `--force`: demo data
//! mixed into real data would corrupt every published figure.
//!
//! One file (about 550 lines): the generator is one seeded random stream, and its order of
//! draws is what makes `--seed` reproducible; splitting it would spread that order across
//! files for no reader's benefit.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use clap::Args;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use redtape_domain::filer::{FilerProfile, SectorSection, SizeClass};
use redtape_domain::procedure_terms::{ProcedureCommand, Terms};
use redtape_domain::submission::{
    AmendmentDraft, ComplaintDraft, CostsDraft, FilerId, SubmissionCommand, SubmissionServices,
    TimingDraft,
};
use redtape_domain::{Category, Channel, Geography, Outcome, Provinces};
use redtape_index::calendar::WorkingCalendar;
use redtape_store::{Catalogue, Db, Procedures, Projector, Submissions};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::BoxError;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many submissions to file.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub submissions: u64,
    /// Seed of the generator: the same seed gives the same figures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// File even though the store already has submissions.
    #[arg(long)]
    pub force: bool,
    /// Decide every command with the aggregate as usual, but append the events in bulk
    /// (10,000 submissions per transaction) and project them by a rebuild: for loading a
    /// large demo or benchmark store in minutes. Without it, each command is filed on its own.
    #[arg(long)]
    pub import: bool,
}

/// What was filed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    pub timings: u64,
    pub complaints: u64,
    pub amended: u64,
    pub withdrawn: u64,
}

pub async fn run(db: Db, args: DemoArgs) -> Result<(), BoxError> {
    let started = std::time::Instant::now();
    let filing = if args.import {
        Filing::Import
    } else {
        Filing::Commands
    };
    let summary = generate_with(&db, args.submissions, args.seed, args.force, filing).await?;
    eprintln!(
        "filed {} timings and {} complaints ({} amended, {} withdrawn) in {:.1}s",
        summary.timings,
        summary.complaints,
        summary.amended,
        summary.withdrawn,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Gen(ChaCha8Rng);

/// A demo filer's profile, roughly as the donor programmes' reach looks: a third declare
/// nothing; the others mostly micro and small firms in trade and manufacturing, about 40%
/// women-owned and a quarter ethnic-minority-owned (Soc Trang's programme reached 24.8%),
/// attributes often left undeclared, so the breakdowns show every group, `unknown` among
/// them, and some rare combinations.
fn demo_profile(gen: &mut Gen) -> FilerProfile {
    if gen.chance(33) {
        return FilerProfile::default();
    }
    let size_class = (!gen.chance(10)).then(|| {
        *gen.pick(&[
            SizeClass::Micro,
            SizeClass::Micro,
            SizeClass::Micro,
            SizeClass::Micro,
            SizeClass::Micro,
            SizeClass::Micro,
            SizeClass::Small,
            SizeClass::Small,
            SizeClass::Medium,
            SizeClass::Large,
        ])
    });
    // Trade, manufacturing and construction dominate; a few firms are in rare sections, so
    // some breakdown groups are small: primary suppression, and secondary suppression of a
    // sibling group, are visible in the demo (methodology 1.1, §4).
    let sector_section = (!gen.chance(20))
        .then(|| {
            if gen.chance(4) {
                *gen.pick(&["B", "D", "E", "K", "L", "N", "P", "R", "S"])
            } else {
                *gen.pick(&["G", "G", "G", "C", "C", "F", "A", "I", "H", "M", "Q"])
            }
        })
        .and_then(SectorSection::parse);
    let woman_owned = (!gen.chance(15)).then(|| gen.chance(47));
    let ethnic_minority_owned = (!gen.chance(20)).then(|| gen.chance(25));
    FilerProfile {
        size_class,
        sector_section,
        woman_owned,
        ethnic_minority_owned,
    }
}

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// A log-normal factor with median 1 (Box-Muller).
    fn lognormal(&mut self, sigma: f64) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (sigma * z).exp()
    }
}

/// A province's stable "speed": between 0.7 (fast) and 1.5 (slow), from its code.
fn province_factor(code: &str) -> f64 {
    let n: u32 = code
        .bytes()
        .map(u32::from)
        .fold(7, |a, b| a.wrapping_mul(31).wrapping_add(b));
    0.7 + f64::from(n % 81) / 100.0
}

fn add_working_days(calendar: &WorkingCalendar, from: NaiveDate, days: u32) -> NaiveDate {
    let mut day = from;
    let mut left = days;
    while left > 0 {
        day += Duration::days(1);
        if calendar.is_working_day(day) {
            left -= 1;
        }
    }
    day
}

const NARRATIVES: [&str; 5] = [
    "The office asked for documents that are not on the published list.",
    "We were told to come back three times because the officer in charge was absent.",
    "An intermediary offered to speed up the file for an extra payment.",
    "The online portal rejected the upload several times and we had to file on paper.",
    "The fee charged was higher than the published fee schedule.",
];

/// How generated submissions reach the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filing {
    /// One command at a time through `Submissions::create`/`execute`, as the API files them.
    Commands,
    /// Decided by the same aggregate, appended many per transaction (`Submissions::import`):
    /// for loading a million submissions into a benchmark store in minutes, not an hour.
    Import,
}

/// Files `submissions` demo submissions through the command path (see the module docs).
pub async fn generate(
    db: &Db,
    submissions: u64,
    seed: u64,
    force: bool,
) -> Result<DemoSummary, BoxError> {
    generate_with(db, submissions, seed, force, Filing::Commands).await
}

pub async fn generate_with(
    db: &Db,
    submissions: u64,
    seed: u64,
    force: bool,
    filing: Filing,
) -> Result<DemoSummary, BoxError> {
    let existing = redtape_store::db::count_observations(db).await?;
    if existing > 0 && !force {
        return Err(format!(
            "the store already has {existing} submissions; demo data would be mixed into them \
             (use a fresh store, or --force if this is a demo store)"
        )
        .into());
    }
    let CommandSide {
        catalogue,
        projector,
        procedures,
        subs,
    } = command_side(db).await?;
    let today = redtape_domain::submission::aggregate::vietnam_date(Utc::now());
    let planner = Planner::new(&catalogue, seed, submissions, today)?;

    // One reform, clearly labelled, so trends show a before and after.
    let reform = ProcedureCommand::Reform {
        terms: Terms {
            effective_from: NaiveDate::from_ymd_opt(today.year(), 1, 1).ok_or("date")?,
            statutory_working_days: 2,
            official_fee_vnd: Some(0),
            legal_basis: "DEMO DATA: illustrative reform, not a real legal act".into(),
        },
        at: Utc::now(),
    };
    if let Err(e) = procedures.execute("1.001612", reform, meta()).await {
        // A second demo run on a --force store finds the reform already there.
        tracing::info!(error = %e, "demo reform not added");
    }

    let summary = match filing {
        Filing::Commands => {
            let summary = file_commands(subs, planner).await?;
            project(|| projector.catch_up()).await?;
            summary
        }
        Filing::Import => {
            let summary = import(&subs, planner).await?;
            // A bulk backlog is projected fastest by a replay, with the same result as a
            // catch-up (the rebuild tests prove the two equal).
            project(|| projector.rebuild()).await?;
            summary
        }
    };
    Ok(summary)
}

/// What demo data is filed through: the seed catalogue registered and projected, and a
/// command side deciding with it as the API does.
struct CommandSide {
    catalogue: Arc<Catalogue>,
    projector: Projector,
    procedures: Procedures,
    subs: Arc<Submissions>,
}

async fn command_side(db: &Db) -> Result<CommandSide, BoxError> {
    let wake = Arc::new(Notify::new());
    let catalogue = Arc::new(Catalogue::new());
    let projector = Projector::new(db.clone()).with_catalogue(catalogue.clone());
    let procedures = Procedures::new(db, wake.clone());
    procedures
        .seed(
            redtape_domain::ProcedureCatalogue::seed(),
            redtape_domain::submission::report::earliest_date(),
        )
        .await?;
    projector.catch_up().await?;
    // The projector reloads the catalogue only when it applies procedure events itself; on a
    // store a server has already projected, it applies none, so load the read model here.
    catalogue.reload(db).await?;
    let subs = Arc::new(Submissions::new(
        db,
        SubmissionServices {
            procedures: catalogue.clone(),
            amendment_window_days: 3650,
        },
        wake,
    ));
    Ok(CommandSide {
        catalogue,
        projector,
        procedures,
        subs,
    })
}

/// Imports the given timings exactly as `demo-data --import` imports its own (each decided by
/// the Submission aggregate, appended 10,000 per transaction), then projects them by a
/// rebuild; returns how many were imported. For the bench's pre-loaded hot cell.
pub async fn import_timings(
    db: &Db,
    timings: impl Iterator<Item = (FilerId, TimingDraft)>,
) -> Result<u64, BoxError> {
    let side = command_side(db).await?;
    let mut count = 0u64;
    let submissions = timings.map(|(filer, draft)| {
        count += 1;
        let command = SubmissionCommand::ReportTiming {
            filer,
            draft,
            at: Utc::now(),
            profile: Default::default(),
            intermediary: None,
        };
        (Uuid::now_v7().to_string(), vec![command])
    });
    import_chunks(&side.subs, submissions).await?;
    side.projector.rebuild().await?;
    Ok(count)
}

/// Appends submissions 10,000 per transaction through `Submissions::import`.
async fn import_chunks(
    subs: &Submissions,
    mut submissions: impl Iterator<Item = (String, Vec<SubmissionCommand>)>,
) -> Result<(), BoxError> {
    loop {
        let chunk: Vec<_> = submissions.by_ref().take(10_000).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        let meta = meta();
        persist(|| subs.import(chunk.clone(), &meta)).await?;
    }
}

fn meta() -> HashMap<String, String> {
    HashMap::from([("actor".to_string(), "demo-data".to_string())])
}

/// Files the plans concurrently (the commands are independent), 32 at a time. Each plan's
/// content depends only on its place in the sequence, so which worker files it does not
/// change the data.
async fn file_commands(subs: Arc<Submissions>, planner: Planner) -> Result<DemoSummary, BoxError> {
    let planner = Arc::new(std::sync::Mutex::new(planner));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (subs, planner) = (subs.clone(), planner.clone());
        workers.push(tokio::spawn(async move {
            let mut summary = DemoSummary::default();
            loop {
                let next = planner.lock().ok().and_then(|mut p| p.next());
                let Some(plan) = next else {
                    break;
                };
                summary.add(&plan);
                let id = plan.id.as_str();
                persist(|| subs.create(id, plan.command.clone(), meta()))
                    .await
                    .map_err(|e| format!("{id}: {}", chain(&e)))?;
                if let Some(change) = plan.follow_up {
                    persist(|| subs.execute(id, change.clone(), meta()))
                        .await
                        .map_err(|e| format!("{id}: {}", chain(&e)))?;
                }
            }
            Ok::<_, String>(summary)
        }));
    }
    let mut summary = DemoSummary::default();
    for worker in workers {
        summary.merge(worker.await??);
    }
    Ok(summary)
}

/// Most runs of a store call while the store is unavailable, 200 ms apart.
const ATTEMPTS: u32 = 50;

/// Runs `run` again, 200 ms apart, while it fails with an error `retryable` accepts (up to
/// [`ATTEMPTS`] runs), as an API client retries a 503: on SQLite the service's projector may
/// hold the one connection longer than the pool waits (seconds, in a debug build under load),
/// and PostgreSQL may be restarting. Returns how many runs it took, with the outcome.
async fn again<T, E, F, Fut>(mut run: F, retryable: impl Fn(&E) -> bool) -> (u32, Result<T, E>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut runs = 1;
    loop {
        match run().await {
            Err(e) if retryable(&e) && runs < ATTEMPTS => {
                runs += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            outcome => return (runs, outcome),
        }
    }
}

/// Sends a command again while the store is unavailable (see [`again`]). A retry that finds
/// the record already there or changed means an earlier attempt committed: done.
async fn persist<F, Fut, T>(send: F) -> Result<(), redtape_store::CommandError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, redtape_store::CommandError>>,
{
    use redtape_domain::submission::SubmissionError;
    use redtape_store::CommandError;
    match again(send, |e| matches!(e, CommandError::Unavailable(_))).await {
        (_, Ok(_)) => Ok(()),
        (
            runs,
            Err(CommandError::Conflict | CommandError::Rule(SubmissionError::AlreadyExists)),
        ) if runs > 1 => Ok(()),
        (_, Err(e)) => Err(e),
    }
}

/// Runs a projection (`catch_up`, `rebuild`: both safe to repeat) again while the store is
/// unavailable (see [`again`]).
async fn project<F, Fut>(run: F) -> Result<u64, redtape_store::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, redtape_store::StoreError>>,
{
    again(
        run,
        |e| matches!(e, redtape_store::StoreError::Sql(e) if redtape_store::db::is_unavailable(e)),
    )
    .await
    .1
}

/// An error and its causes, `: `-separated (the demo's errors are reported as text).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Imports the plans 10,000 submissions per transaction.
async fn import(subs: &Submissions, planner: Planner) -> Result<DemoSummary, BoxError> {
    let mut summary = DemoSummary::default();
    let submissions = planner.map(|plan| {
        summary.add(&plan);
        let commands = std::iter::once(plan.command)
            .chain(plan.follow_up)
            .collect();
        (plan.id, commands)
    });
    import_chunks(subs, submissions).await?;
    Ok(summary)
}

impl DemoSummary {
    fn add(&mut self, plan: &Plan) {
        match plan.command {
            SubmissionCommand::ReportTiming { .. } => self.timings += 1,
            _ => self.complaints += 1,
        }
        match plan.follow_up {
            Some(SubmissionCommand::Withdraw { .. }) => self.withdrawn += 1,
            Some(_) => self.amended += 1,
            None => {}
        }
    }

    fn merge(&mut self, other: DemoSummary) {
        self.timings += other.timings;
        self.complaints += other.complaints;
        self.amended += other.amended;
        self.withdrawn += other.withdrawn;
    }
}

/// One generated submission: its filing command and perhaps an amendment or withdrawal.
struct Plan {
    id: String,
    command: SubmissionCommand,
    follow_up: Option<SubmissionCommand>,
}

/// Generates the plans in a fixed order from the seed.
struct Planner {
    gen: Gen,
    left: u64,
    codes: Vec<(String, u16, Option<i64>)>,
    vn63: Vec<String>,
    vn34: Vec<String>,
    first: NaiveDate,
    span: u64,
    today: NaiveDate,
    /// Each demo filer with the profile it declared (METHODOLOGY.md §7).
    filers: Vec<(FilerId, FilerProfile)>,
    calendar: WorkingCalendar,
}

impl Planner {
    fn new(
        catalogue: &Catalogue,
        seed: u64,
        submissions: u64,
        today: NaiveDate,
    ) -> Result<Planner, BoxError> {
        let mut gen = Gen(ChaCha8Rng::seed_from_u64(seed));
        let codes: Vec<(String, u16, Option<i64>)> = catalogue
            .procedures()
            .iter()
            .map(|p| {
                (
                    p.code.as_str().to_string(),
                    p.statutory_working_days,
                    p.official_fee_vnd,
                )
            })
            .collect();
        if codes.is_empty() {
            return Err("the procedure catalogue is empty; cannot generate submissions".into());
        }
        let provinces = Provinces::get();
        let codes_on = |geography| {
            provinces
                .list(geography)
                .map(|p| p.code.as_str().to_string())
                .collect::<Vec<_>>()
        };
        let first = NaiveDate::from_ymd_opt(2022, 1, 3).ok_or("date")?;
        let span = (today - first).num_days().max(60) as u64 - 45;
        let filers = (0..(submissions / 20).max(5))
            .map(|_| {
                let id = FilerId(Uuid::from_u64_pair(gen.0.next_u64(), gen.0.next_u64()));
                (id, demo_profile(&mut gen))
            })
            .collect();
        Ok(Planner {
            gen,
            left: submissions,
            codes,
            vn63: codes_on(Geography::Vn63),
            vn34: codes_on(Geography::Vn34),
            first,
            span,
            today,
            filers,
            calendar: WorkingCalendar::vietnam()?,
        })
    }
}

impl Iterator for Planner {
    type Item = Plan;

    fn next(&mut self) -> Option<Plan> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let gen = &mut self.gen;
        let today = self.today;
        let (code, limit, fee) = gen.pick(&self.codes).clone();
        let date = self.first + Duration::days(gen.below(self.span) as i64);
        let map = if date < redtape_domain::geography::merger_date() {
            &self.vn63
        } else {
            &self.vn34
        };
        let province = gen.pick(map).clone();
        let informal = gen.chance(12);
        let costs = CostsDraft {
            official_fees: Some(fee.unwrap_or(100_000 + 50_000 * gen.below(30) as i64)),
            unofficial_payments: Some(if informal {
                200_000 + 100_000 * gen.below(48) as i64
            } else {
                0
            }),
            external_services: gen.chance(50).then(|| 500_000 * (1 + gen.below(40) as i64)),
        };
        let staff_hours = (!gen.chance(10)).then(|| 1.0 + gen.below(78) as f64 / 2.0);
        let visit_count = gen.below(7) as i64;
        let visits = Some(visit_count);
        let (filer, profile) = *gen.pick(&self.filers);
        let id = Uuid::from_u64_pair(gen.0.next_u64(), gen.0.next_u64()).to_string();
        let command = if gen.chance(80) {
            let factor = province_factor(&province) * gen.lognormal(0.45);
            let elapsed = (f64::from(limit) * factor).round() as u32;
            let completed = add_working_days(&self.calendar, date, elapsed);
            let pending = gen.chance(8) || completed > today;
            let channel = *gen.pick(&[
                Channel::Online,
                Channel::Online,
                Channel::InPerson,
                Channel::InPerson,
                Channel::Mixed,
                Channel::Postal,
            ]);
            let outcome = *gen.pick(
                &[Outcome::Granted; 18]
                    .iter()
                    .chain([Outcome::Refused, Outcome::Abandoned].iter())
                    .copied()
                    .collect::<Vec<_>>(),
            );
            SubmissionCommand::ReportTiming {
                filer,
                draft: TimingDraft {
                    procedure_code: code,
                    province_code: province,
                    submitted_on: date,
                    completed_on: (!pending).then_some(completed),
                    outcome: (!pending).then_some(outcome),
                    channel,
                    costs,
                    staff_hours,
                    visits,
                },
                at: Utc::now(),
                profile,
                intermediary: None,
            }
        } else {
            let mut categories = vec![*gen.pick(Category::ALL)];
            if informal {
                categories.push(Category::InformalPaymentRequested);
            }
            categories.sort();
            categories.dedup();
            SubmissionCommand::FileComplaint {
                filer,
                draft: ComplaintDraft {
                    procedure_code: code,
                    province_code: province,
                    experienced_on: date,
                    categories,
                    narrative: gen.pick(&NARRATIVES).to_string(),
                    costs,
                    staff_hours,
                    visits,
                },
                at: Utc::now(),
                profile,
                intermediary: None,
            }
        };
        let follow_up = match gen.below(100) {
            0..=4 => Some(SubmissionCommand::Amend {
                filer,
                draft: AmendmentDraft {
                    reason: "Corrected after checking our records.".into(),
                    // Always a different value: an amendment that changes nothing is refused.
                    changes:
                        serde_json::json!({"visits": (visit_count + 1 + gen.below(5) as i64) % 7})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                },
                at: Utc::now(),
            }),
            5..=6 => Some(SubmissionCommand::Withdraw {
                filer,
                reason: Some("Filed by mistake.".into()),
                at: Utc::now(),
            }),
            _ => None,
        };
        Some(Plan {
            id,
            command,
            follow_up,
        })
    }
}
