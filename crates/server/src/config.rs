//! Configuration: command-line flags, each with an environment variable, with defaults that
//! run a working service on a fresh machine (embedded store, localhost).

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

/// Options are where they take effect: the global ones (the database, logging) on every
/// command, the service's own on `serve` (`redtape serve --help`), each command's on it. A bare
/// `redtape` serves with the settings of the environment (REDTAPE_* variables) and defaults.
#[derive(Debug, Parser)]
#[command(
    name = "redtape",
    version,
    about = "Business-to-government regulatory feedback service"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What every command needs: where the data is, and how to log.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// postgres://user@host/db (production) or sqlite://path; default: the embedded store at
    /// ./data/redtape.sqlite.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Log format: json (one object per line, for collectors) or text.
    #[arg(long, env = "REDTAPE_LOG_FORMAT", default_value = "json",
          value_parser = ["json", "text"], global = true)]
    pub log_format: String,
    /// Log filter in tracing's EnvFilter syntax (e.g. info,sqlx=warn).
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub log: String,
}

/// How figures are computed: `serve` (its projector) and `rebuild` must agree, so both take
/// these.
#[derive(Debug, Clone, Args)]
pub struct MethodologyArgs {
    /// A holiday calendar CSV (date,kind,name,source; kind holiday or working_day) that
    /// replaces the built-in one (docs/holidays.md).
    #[arg(long, env = "REDTAPE_HOLIDAYS")]
    pub holidays: Option<std::path::PathBuf>,
    /// SCM hourly tariffs overriding the defaults, as YEAR=VND_PER_HOUR[,YEAR=...]
    /// (docs/methodology.md).
    #[arg(long, env = "REDTAPE_HOURLY_TARIFFS")]
    pub hourly_tariffs: Option<String>,
    /// Disclosure threshold: cells with fewer observations publish counts only (never
    /// below 3).
    #[arg(long, env = "REDTAPE_SUPPRESSION_K", default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(3..=1000))]
    pub suppression_k: u16,
}

/// The service's own settings.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "REDTAPE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Whether this process runs the projector: on, off (an API-only replica), or auto (on
    /// PostgreSQL, the replica holding the leader lock projects and another takes over within
    /// seconds if it dies; on SQLite, on).
    #[arg(long, env = "REDTAPE_PROJECTOR", default_value = "auto")]
    pub projector: redtape_store::projector::leader::Mode,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "REDTAPE_WORKERS")]
    pub workers: Option<usize>,
    /// Largest database pool (SQLite uses at most 8).
    #[arg(long, env = "REDTAPE_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,
    /// Days after filing during which a business may amend or withdraw a submission.
    #[arg(long, env = "REDTAPE_AMENDMENT_WINDOW_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub amendment_window_days: i64,
    /// Seconds a successful token lookup, and a filer's profile, are remembered (so a
    /// revocation, or a profile change made through another replica, takes effect within this
    /// time); 0 checks the database on every request.
    #[arg(long, env = "REDTAPE_TOKEN_CACHE_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=300))]
    pub token_cache_seconds: u64,
    /// Seconds a client may take to send a request's body once its headers arrived; a slower
    /// body is answered 408 and its connection closed.
    #[arg(long, env = "REDTAPE_BODY_TIMEOUT_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub body_timeout_seconds: u64,
    /// Requests per minute allowed to each bearer token (GCRA: the whole minute's quota may
    /// be used at once, then it refills steadily); 0 turns the limit off. Anonymous reads
    /// are not limited by the service.
    #[arg(long, env = "REDTAPE_RATE_LIMIT_PER_MINUTE", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub rate_limit_per_minute: u32,
    /// New submissions a business may file per day (Vietnam time); 0 turns the cap off.
    #[arg(long, env = "REDTAPE_DAILY_SUBMISSION_CAP", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub daily_submission_cap: u32,
    /// SPDX identifier of the licence every published dataset carries.
    #[arg(long, env = "REDTAPE_DATA_LICENCE_ID", default_value = "CC-BY-4.0")]
    pub data_licence_id: String,
    /// The licence's name.
    #[arg(
        long,
        env = "REDTAPE_DATA_LICENCE_NAME",
        default_value = "Creative Commons Attribution 4.0 International"
    )]
    pub data_licence_name: String,
    /// The licence's URL (sent as `Link: <url>; rel="license"` on every dataset).
    #[arg(
        long,
        env = "REDTAPE_DATA_LICENCE_URL",
        default_value = "https://creativecommons.org/licenses/by/4.0/"
    )]
    pub data_licence_url: String,
    #[command(flatten)]
    pub methodology: MethodologyArgs,
}

/// Everything the service runs with (what `serve` parses), for `crate::start`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub global: Global,
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Replay every event into fresh read models (atomically) and exit.
    Rebuild(MethodologyArgs),
    /// After restoring a pg_dump into another PostgreSQL cluster, and before serving:
    /// re-stamp the event log's commit order for this cluster's transaction counter (does
    /// nothing when it is not needed). Run it with the service stopped.
    Restamp,
    /// Issue or revoke bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the OpenAPI document (as committed in api-spec/openapi.json).
    Openapi,
    /// File realistic demo submissions through the command path (refuses a store with data).
    DemoData(crate::demo::DemoArgs),
    /// Measure the performance targets over HTTP on a fresh store: filing throughput, its
    /// stability and the projector's lag; index latency; the service's memory. Fails if a
    /// target is missed (see docs/benchmarks.md).
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it once on stdout (only its hash is stored).
    Issue {
        /// business, intermediary, officer or admin.
        #[arg(long)]
        role: String,
        /// For a business or intermediary token: the registered filer it speaks for (default:
        /// register a new filer of that kind).
        #[arg(long)]
        filer: Option<Uuid>,
        /// When the token stops working (RFC 3339, e.g. 2027-06-30T00:00:00Z); default never.
        #[arg(long)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        /// A note for operators (who holds this token).
        #[arg(long)]
        label: Option<String>,
        /// For an officer token: a vn-34 province it may act on (repeat for several; default:
        /// every province). Officers limited to provinces cannot change the national catalogue.
        #[arg(long = "province", value_name = "CODE")]
        provinces: Vec<String>,
        /// For a new filer: micro, small, medium or large (published only, coarsely,
        /// in the open microdata).
        #[arg(long)]
        size_class: Option<String>,
        /// For a new filer: its VSIC sector section, A to U.
        #[arg(long)]
        sector: Option<String>,
    },
    /// Revoke a token by its id (printed when it was issued).
    Revoke { token_id: Uuid },
}

pub fn init_logging(global: &Global) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if global.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

impl Settings {
    /// Settings from `serve`'s command-line arguments (global ones included; defaults and
    /// environment as for the binary), for tests and the bench, so they run with exactly the
    /// production defaults.
    pub fn from_args(args: &[&str]) -> Result<Settings, clap::Error> {
        let argv = ["redtape", "serve"].into_iter().chain(args.iter().copied());
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Some(Command::Serve(serve)) => Ok(Settings {
                global: cli.global,
                serve,
            }),
            _ => Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
        }
    }

    /// `serve`'s settings from the environment and defaults alone (a bare `redtape`).
    pub fn of_environment(global: Global) -> Result<Settings, clap::Error> {
        #[derive(Parser)]
        struct Environment {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Ok(Settings {
            global,
            serve: Environment::try_parse_from(["redtape"])?.serve,
        })
    }

    /// The methodology configuration these settings describe; errors name the setting.
    pub fn methodology(&self) -> Result<redtape_store::cells::Methodology, String> {
        self.serve.methodology.methodology()
    }
}

impl MethodologyArgs {
    /// The methodology configuration these settings describe; errors name the setting.
    pub fn methodology(&self) -> Result<redtape_store::cells::Methodology, String> {
        let mut methodology =
            redtape_store::cells::Methodology::vietnam().map_err(|e| e.to_string())?;
        if let Some(path) = &self.holidays {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--holidays {}: {e}", path.display()))?;
            let first = chrono::NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default();
            let last = chrono::NaiveDate::from_ymd_opt(2040, 12, 31).unwrap_or_default();
            methodology.calendar =
                redtape_index::calendar::WorkingCalendar::from_csv(&text, first, last)
                    .map_err(|e| format!("--holidays {}: {e}", path.display()))?;
        }
        if let Some(spec) = &self.hourly_tariffs {
            methodology.tariffs = methodology
                .tariffs
                .with_overrides(spec)
                .map_err(|e| format!("--hourly-tariffs: {e}"))?;
        }
        methodology.k = usize::from(self.suppression_k);
        Ok(methodology)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methodology_settings_take_effect() {
        let dir = std::env::temp_dir().join(format!("redtape-cfg-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("holidays.csv");
        // Monday 8 September 2025 declared a holiday; the file replaces the built-in calendar.
        std::fs::write(
            &path,
            "date,kind,name,source\n2025-09-08,holiday,test,test\n",
        )
        .unwrap();
        let path_text = path.display().to_string();
        let settings = Settings::from_args(&[
            "--holidays",
            &path_text,
            "--hourly-tariffs",
            "2025=40000",
            "--suppression-k",
            "7",
        ])
        .unwrap();
        let m = settings.methodology().unwrap();
        let day = |d| chrono::NaiveDate::from_ymd_opt(2025, 9, d).unwrap();
        assert!(!m.calendar.is_working_day(day(8)));
        assert!(
            m.calendar.is_working_day(day(2)),
            "the built-in National Day is replaced"
        );
        assert_eq!(m.tariffs.for_year(2025), Some(40_000.0));
        assert_eq!(
            m.tariffs.for_year(2024),
            Some(23_800.0),
            "other years keep the default"
        );
        assert_eq!(m.k, 7);
        let defaults = Settings::from_args(&[]).unwrap().methodology().unwrap();
        assert_eq!(defaults.k, 5);
        assert!(!defaults.calendar.is_working_day(day(2)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The help of `path` (subcommands of `redtape`), as a user sees it.
    fn help(path: &[&str]) -> String {
        use clap::CommandFactory;
        let mut command = Cli::command();
        command.build();
        let mut command = &mut command;
        for name in path {
            command = command.find_subcommand_mut(name).unwrap();
        }
        command.render_long_help().to_string()
    }

    #[test]
    fn each_command_shows_its_own_options() {
        let serve_only = [
            "--bind",
            "--workers",
            "--rate-limit-per-minute",
            "--data-licence-id",
        ];
        let serve = help(&["serve"]);
        for option in serve_only
            .iter()
            .chain(&["--suppression-k", "--database-url", "--log"])
        {
            assert!(serve.contains(option), "serve --help lacks {option}");
        }
        for path in [
            &["token", "issue"][..],
            &["migrate"],
            &["openapi"],
            &["bench"],
        ] {
            let text = help(path);
            assert!(
                text.contains("--database-url"),
                "{path:?}: the global options"
            );
            assert!(text.contains("--log"), "{path:?}");
            for option in serve_only {
                assert!(!text.contains(option), "{path:?} --help shows {option}");
            }
        }
        let rebuild = help(&["rebuild"]);
        assert!(rebuild.contains("--suppression-k") && !rebuild.contains("--bind"));
        assert!(help(&["token", "issue"]).contains("--role"));
        // A service option outside `serve` is an error, never silently ignored.
        let err = Cli::try_parse_from(["redtape", "--bind", "127.0.0.1:1", "migrate"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        // Global options go before or after the command.
        let cli = Cli::try_parse_from([
            "redtape",
            "--log",
            "error",
            "serve",
            "--bind",
            "127.0.0.1:9",
        ])
        .unwrap();
        assert_eq!(cli.global.log, "error");
        let settings =
            Settings::from_args(&["--bind", "127.0.0.1:9", "--database-url", "sqlite://x"])
                .unwrap();
        assert_eq!(settings.serve.bind, "127.0.0.1:9");
        assert_eq!(settings.global.database_url.as_deref(), Some("sqlite://x"));
    }
}
