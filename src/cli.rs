//! The command line: `serve`, `migrate`, `user add`, `import`.

use std::{io::Read, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    app::{self, AppState},
    auth::password,
    config::{Config, Secret},
    domain::{EntityId, Role, UserName},
    store::{AddUser, Store},
};

#[derive(Parser)]
#[command(
    name = "revisit",
    version,
    about = "Books follow-up visits for field service (seiapi v3)."
)]
struct Cli {
    /// Optional TOML configuration file; REVISIT_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server.
    Serve {
        /// Seed the demo entity (idempotent) and allow running without a JWT secret.
        #[arg(long)]
        demo: bool,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Load the built-in scheduler's work centers, technicians and order types from a JSON file
    /// (`{"WorkCenters": [...], "Technicians": [...], "OrderTypes": [...]}`) or a CSV file with
    /// `--kind`; all rows are checked before anything is written.
    Import {
        #[arg(long)]
        entity: String,
        /// workcenters, technicians or ordertypes (required for CSV and for a JSON array).
        #[arg(long)]
        kind: Option<String>,
        file: PathBuf,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (or replace its role and password); the password is read from stdin.
    Add {
        #[arg(long)]
        entity: String,
        #[arg(long)]
        role: String,
        name: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("revisit: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("revisit: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("revisit: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_env("REVISIT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("REVISIT_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            Store::open(config.database_url.expose(), &config.store_options()).await?;
            tracing::info!("database schema is up to date");
            Ok(())
        }
        Command::Import { entity, kind, file } => {
            let entity = EntityId::parse(&entity).map_err(anyhow::Error::msg)?;
            let store = Store::open(config.database_url.expose(), &config.store_options()).await?;
            let n = crate::import::import(&store, &entity, &file, kind.as_deref()).await?;
            println!("imported {n} objects into entity {entity}");
            Ok(())
        }
        Command::User {
            command: UserCommand::Add { entity, role, name },
        } => {
            let entity = EntityId::parse(&entity).map_err(anyhow::Error::msg)?;
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let name = UserName::parse(&name).map_err(anyhow::Error::msg)?;
            let mut pw = String::new();
            std::io::stdin().read_to_string(&mut pw)?;
            let pw = pw.trim_end_matches(['\r', '\n']);
            if pw.len() < 8 {
                anyhow::bail!("the password (read from stdin) must be at least 8 characters");
            }
            let store = Store::open(config.database_url.expose(), &config.store_options()).await?;
            store.ensure_entity(&entity).await?;
            let hash = password::hash(pw)?;
            match store.add_user(&entity, &name, role, &hash).await? {
                AddUser::Created => {
                    println!("created user {name} ({}) in entity {entity}", role.as_str())
                }
                AddUser::Updated => {
                    println!("updated user {name} ({}) in entity {entity}", role.as_str())
                }
            }
            Ok(())
        }
        Command::Serve { demo } => {
            if demo && config.jwt_secret.is_none() {
                tracing::warn!(
                    "demo mode: no JWT secret configured, using a random one (tokens end with the process)"
                );
                config.jwt_secret = Some(Secret::new(crate::auth::random_hex(32)));
            }
            let state = AppState::build(config).await?;
            if demo {
                tracing::warn!(
                    "demo mode: demo users have their user name as password; never use --demo in production"
                );
                crate::demo::seed(&state.store).await?;
            }
            let listener = tokio::net::TcpListener::bind(state.config.listen).await?;
            tracing::info!(addr = %listener.local_addr()?, config = ?state.config, "serving");
            let store = state.store.clone();
            app::serve(listener, state, shutdown_signal()).await?;
            store.close().await;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; draining");
}
