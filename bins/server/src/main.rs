//! `nosyntask-server`: the command line. `serve` (default) runs the API and/or workers,
//! `token` prints a JWT for the configured secret, `openapi` writes the OpenAPI YAML, `migrate`
//! applies the database migrations, `nanostory-upgrade` moves NanoStory's own workflow tables
//! aside on its database and brings their history into the engine's.

mod serve;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use nosyntask_server::auth::JwtAuth;
use nosyntask_server::config::Settings;
use nosyntask_server::{openapi, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "nosyntask-server",
    version,
    about = "The nosyntask workflow engine server"
)]
struct Cli {
    /// TOML configuration file (optional: without one, built-in defaults apply).
    #[arg(long, global = true, env = "NOSYNTASK_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the HTTP API and/or the workers, as `server.role` says (the default command).
    Serve,
    /// Prints a JWT signed with the configured secret (or the development secret).
    Token {
        /// The user id (`userId` claim).
        #[arg(long)]
        user: i64,
        #[arg(long, value_enum, default_value_t = TokenRole::User)]
        role: TokenRole,
        /// Lifetime of the token.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
    /// Writes the OpenAPI document (YAML) to a file, or to stdout.
    Openapi {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Applies pending database migrations and exits.
    Migrate,
    /// On NanoStory's own database: moves NanoStory's `workflow_jobs` and `generation_tasks`
    /// aside (to `nanostory_*`), migrates, and copies their history into the engine's tables.
    /// Safe to run again.
    NanostoryUpgrade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TokenRole {
    User,
    Admin,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nosyntask-server: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi { out } = &command {
        return write_openapi(out.as_deref());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    nosyntask_server::i18n::set_default(settings.server.default_language);
    match command {
        Command::Token {
            user,
            role,
            ttl_hours,
        } => {
            anyhow::ensure!(user > 0, "--user must be a positive integer");
            let (secret, _) = serve::jwt_secret(&settings)?;
            let auth = JwtAuth::new(&secret)?;
            let token = auth.issue(
                user,
                role == TokenRole::Admin,
                Duration::from_secs(ttl_hours.saturating_mul(3600)),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate => {
            telemetry::init(settings.server.log_format, &settings.server.log_level);
            runtime()?.block_on(serve::migrate(&settings))
        }
        Command::NanostoryUpgrade => {
            telemetry::init(settings.server.log_format, &settings.server.log_level);
            runtime()?.block_on(serve::nanostory_upgrade(&settings))
        }
        Command::Serve => {
            telemetry::init(settings.server.log_format, &settings.server.log_level);
            runtime()?.block_on(serve::serve(settings))
        }
        Command::Openapi { .. } => Ok(()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nosyntask")
        .build()
        .context("cannot start the async runtime")
}

fn write_openapi(out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let yaml = openapi::yaml().map_err(anyhow::Error::msg)?;
    match out {
        Some(path) => {
            std::fs::write(path, yaml).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            print!("{yaml}");
            Ok(())
        }
    }
}
