//! The `redtape` service as a library: configuration, command line, and wiring of the crates.
//! The binary (`main.rs`) only calls [`cli_main`]; the end-to-end tests and the bench start
//! the very same service through [`start`].
//!
//! `redtape` alone serves the API on the embedded store (`./data/redtape.sqlite`);
//! `DATABASE_URL=postgres://...` switches to PostgreSQL. Subcommands cover the operator's jobs:
//! `migrate`, `rebuild`, `restamp`, `token issue|revoke`, `openapi`, `bench`.

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod bench;
pub mod config;
pub mod demo;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpServer};
use clap::Parser;
use redtape_api::AppState;
use redtape_domain::filer::aggregate::FilerKind;
use redtape_domain::submission::report::earliest_date;
use redtape_domain::submission::SubmissionServices;
use redtape_domain::{ProcedureCatalogue, Role};
use redtape_store::accounts::{self, Accounts, Registration, TokenRequest};
use redtape_store::db::PoolOptions;
use redtape_store::projector::leader::{self, Mode as ProjectorMode};
use redtape_store::{Catalogue, Db, Procedures, Projector, Submissions};
use tokio::sync::{watch, Notify};

pub use crate::config::Settings;
use crate::config::{Cli, Command, Global, TokenCommand};

/// How the command line is named in event metadata.
const CLI_ACTOR: &str = "cli";

/// Parses the command line and runs it; the exit code reports success.
pub async fn cli_main() -> std::process::ExitCode {
    let cli = Cli::parse();
    config::init_logging(&cli.global);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redtape: {e}");
            let mut source = std::error::Error::source(e.as_ref());
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects to the store the global options name (with `pool`) and migrates it.
async fn connect(global: &Global, pool: PoolOptions) -> Result<Db, BoxError> {
    let db = Db::connect(global.database_url.as_deref(), &pool).await?;
    db.migrate().await?;
    Ok(db)
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    let global = cli.global;
    let connect = || connect(&global, PoolOptions::default());
    match cli.command {
        None => serve(Settings::of_environment(global.clone())?).await,
        Some(Command::Serve(serve_args)) => {
            serve(Settings {
                global: global.clone(),
                serve: serve_args,
            })
            .await
        }
        Some(Command::Migrate) => {
            let db = connect().await?;
            eprintln!("migrations applied ({} store)", db.backend().as_str());
            Ok(())
        }
        Some(Command::Rebuild(methodology)) => {
            let db = connect().await?;
            // Filers and tokens from before they were events would be lost otherwise.
            accounts::adopt(&Accounts::new(&db, Arc::new(Notify::new()))).await?;
            let started = std::time::Instant::now();
            let methodology = Arc::new(methodology.methodology()?);
            let n = Projector::new(db)
                .with_methodology(methodology)
                .rebuild()
                .await?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "rebuilt read models from {n} events in {secs:.2}s ({:.0} events/s)",
                n as f64 / secs.max(1e-9)
            );
            Ok(())
        }
        Some(Command::Restamp) => {
            let db = connect().await?;
            let n = redtape_store::restore::restamp(&db).await?;
            if n == 0 {
                eprintln!("nothing to re-stamp: every event is older than this cluster's counter");
            } else {
                eprintln!("re-stamped the commit order of {n} events for this cluster");
            }
            Ok(())
        }
        Some(Command::Token(TokenCommand::Issue {
            role,
            filer,
            expires_at,
            label,
            provinces,
            size_class,
            sector,
        })) => {
            let profile = redtape_domain::filer::FilerProfile {
                woman_owned: None,
                ethnic_minority_owned: None,
                size_class: size_class
                    .map(|s| {
                        redtape_domain::filer::SizeClass::parse(&s)
                            .ok_or("--size-class must be micro, small, medium or large")
                    })
                    .transpose()?,
                sector_section: sector
                    .map(|s| {
                        redtape_domain::filer::SectorSection::parse(&s)
                            .ok_or("--sector must be a VSIC section letter, A to U")
                    })
                    .transpose()?,
            };
            let role = Role::parse(&role)
                .ok_or("--role must be business, intermediary, officer or admin")?;
            if !profile.is_empty() && (!role.files() || filer.is_some()) {
                return Err(
                    "--size-class and --sector describe a new filer: a business or \
                            intermediary token without --filer"
                        .into(),
                );
            }
            let scope = if provinces.is_empty() {
                redtape_domain::Scope::Everywhere
            } else {
                redtape_domain::Scope::provinces(&provinces).map_err(|v| {
                    format!(
                        "--province: {}",
                        v.0.iter()
                            .map(|f| f.detail.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                })?
            };
            let db = connect().await?;
            let accounts = Accounts::new(&db, Arc::new(Notify::new()));
            accounts::adopt(&accounts).await?;
            let filer = match (role, filer) {
                (role, None) if role.files() => Some(
                    accounts
                        .register(
                            Registration {
                                kind: if role == Role::Intermediary {
                                    FilerKind::Intermediary
                                } else {
                                    FilerKind::Business
                                },
                                profile,
                                label: label.clone(),
                                ..Registration::business()
                            },
                            CLI_ACTOR,
                        )
                        .await?,
                ),
                (_, filer) => filer.map(redtape_domain::submission::FilerId),
            };
            let request = TokenRequest {
                role,
                filer,
                scope,
                label,
                expires_at,
            };
            let issued = accounts.issue(request, CLI_ACTOR).await?;
            eprintln!(
                "issued a {} token (id {}{}{}); it is shown once:",
                role.as_str(),
                issued.principal.token_id,
                issued
                    .principal
                    .filer
                    .map(|f| format!(", filer {f}"))
                    .unwrap_or_default(),
                issued
                    .principal
                    .scope
                    .to_stored()
                    .map(|p| format!(", provinces {p}"))
                    .unwrap_or_default()
            );
            println!("{}", issued.token);
            Ok(())
        }
        Some(Command::Token(TokenCommand::Revoke { token_id })) => {
            let db = connect().await?;
            let accounts = Accounts::new(&db, Arc::new(Notify::new()));
            accounts::adopt(&accounts).await?;
            accounts.revoke(token_id, CLI_ACTOR).await?;
            eprintln!("revoked token {token_id}");
            Ok(())
        }
        Some(Command::Openapi) => {
            print!("{}", redtape_api::openapi::json());
            Ok(())
        }
        Some(Command::Bench(args)) => bench::run(args).await,
        Some(Command::DemoData(args)) => demo::run(connect().await?, args).await,
    }
}

/// Everything `serve` starts, so tests and the bench can run the same service in-process.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub server: actix_web::dev::ServerHandle,
    stop_projector: watch::Sender<bool>,
    projector: tokio::task::JoinHandle<()>,
    pub db: Db,
    /// On SQLite, the lock that keeps a second service off the file, released at stop.
    _serving: Option<std::fs::File>,
    /// The projector as requests see it (whether this process projects now).
    view: Projector,
}

impl Running {
    /// Whether this process runs the projector now (`--projector`).
    pub fn projects(&self) -> bool {
        self.view.projects()
    }

    /// Stops accepting requests, lets in-flight ones finish, then drains the projector.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.stop_projector.send(true);
        let _ = self.projector.await;
        self.db.close().await;
    }
}

/// Connects, migrates, catches the read models up, then serves until stopped.
pub async fn start(settings: &Settings) -> Result<(Running, actix_web::dev::Server), BoxError> {
    let db = connect(
        &settings.global,
        PoolOptions {
            max_connections: settings.serve.db_max_connections,
            ..PoolOptions::default()
        },
    )
    .await?;
    let mode = settings.serve.projector;
    if mode == ProjectorMode::Off && db.backend() == redtape_store::db::Backend::Sqlite {
        return Err(
            "--projector off needs PostgreSQL: on the embedded store the one serving \
                    process must project"
                .into(),
        );
    }
    let serving = db.lock_exclusive()?;
    db.checkpoint_in_background(Duration::from_millis(500));
    redtape_store::limits::sweep_in_background(&db, Duration::from_secs(60));
    // The replica that wins the leader lock at start catches the read models up before it
    // serves, as a lone service does; the others serve at once.
    let lease = match (mode, &db) {
        (ProjectorMode::Auto, Db::Postgres(_)) => leader::try_lead(&db).await?,
        _ => None,
    };
    let projects = match mode {
        ProjectorMode::On => true,
        ProjectorMode::Off => false,
        ProjectorMode::Auto => {
            lease.is_some() || db.backend() == redtape_store::db::Backend::Sqlite
        }
    };
    let wake = Arc::new(Notify::new());
    let catalogue = Arc::new(Catalogue::new());
    let methodology = Arc::new(settings.methodology()?);
    let projector = Projector::new(db.clone())
        .with_catalogue(catalogue.clone())
        .with_methodology(methodology);
    projector.set_projects(projects);
    if projects {
        projector.fill_missing_scores().await?;
    }
    let accounts = Accounts::new(&db, wake.clone());
    accounts::adopt(&accounts).await?;
    accounts.project().await?;
    let mut caught_up = 0;
    if projects {
        projector.upgrade_methodology().await?;
        caught_up += projector.catch_up().await?;
    }
    // The seed catalogue becomes registration events once (later starts find them there);
    // its terms apply from the earliest date redtape accepts.
    let seeded = Procedures::new(&db, wake.clone())
        .seed(ProcedureCatalogue::seed(), earliest_date())
        .await?;
    if projects {
        caught_up += projector.catch_up().await?;
    }
    catalogue.reload(&db).await?;
    tracing::info!(
        events = caught_up,
        seeded,
        store = db.backend().as_str(),
        projector = mode.as_str(),
        leader = projects,
        "read models caught up"
    );
    redtape_metrics::get().set_build(
        redtape_index::METHODOLOGY_VERSION,
        db.backend().as_str(),
        mode.as_str(),
    );

    let (stop_projector, stop_rx) = watch::channel(false);
    let on_request = projector.clone();
    let projector = tokio::spawn(projector.supervise(
        mode,
        lease,
        wake.clone(),
        Duration::from_millis(500),
        stop_rx,
    ));

    let legacy_claims = redtape_store::idempotency::has_claims(&db).await?;
    let state = web::Data::new(AppState {
        legacy_claims,
        body_deadline: Duration::from_secs(settings.serve.body_timeout_seconds),
        db: db.clone(),
        procedures: Procedures::new(&db, wake.clone()),
        accounts,
        releases: redtape_store::Releases::new(&db),
        licence: redtape_api::licence::Licence {
            id: settings.serve.data_licence_id.clone(),
            name: settings.serve.data_licence_name.clone(),
            url: settings.serve.data_licence_url.clone(),
        },
        data_version: Default::default(),
        limits: redtape_api::limits::Limits::on(
            &db,
            settings.serve.rate_limit_per_minute,
            settings.serve.daily_submission_cap,
        ),
        projector: on_request.clone(),
        submissions: Submissions::new(
            &db,
            SubmissionServices {
                procedures: catalogue.clone(),
                amendment_window_days: settings.serve.amendment_window_days,
            },
            wake,
        ),
        catalogue,
        tokens: redtape_store::tokens::TokenCache::new(Duration::from_secs(
            settings.serve.token_cache_seconds,
        )),
        filers: redtape_store::accounts::read::FilerCache::new(Duration::from_secs(
            settings.serve.token_cache_seconds,
        )),
    });
    let server = HttpServer::new(move || redtape_api::app(state.clone()))
        .workers(
            settings
                .serve
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        )
        .shutdown_timeout(10)
        .bind(&settings.serve.bind)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or("the server bound no address")?;
    let server = server.run();
    let running = Running {
        addr,
        server: server.handle(),
        stop_projector,
        projector,
        db,
        _serving: serving,
        view: on_request,
    };
    Ok((running, server))
}

async fn serve(settings: Settings) -> Result<(), BoxError> {
    let (running, server) = start(&settings).await?;
    tracing::info!(
        addr = %running.addr,
        store = running.db.backend().as_str(),
        "redtape listening; API docs at /docs/"
    );
    eprintln!(
        "redtape listening on http://{} (docs: http://{}/docs/)",
        running.addr, running.addr
    );
    // actix handles SIGINT/SIGTERM: the server future ends after a graceful stop.
    server.await?;
    running.stop().await;
    Ok(())
}
