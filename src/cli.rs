//! The command line: `serve`, `migrate`, `init`, `user add`, `import`.

use std::{
    io::{IsTerminal, Read},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::{
    app::{self, AppState},
    auth::password,
    config::{Config, Secret},
    domain::{EntityId, Role, UserName},
    store::{AddUser, SchedKind, Store, schema},
};

#[derive(Parser)]
#[command(
    name = "revisit",
    version,
    about = "Books follow-up visits for field service (seiapi v3).",
    after_help = "The database and every other setting come from --config and REVISIT_* \
                  environment variables (README.md, \"Configuration\"); REVISIT_DATABASE_URL \
                  defaults to sqlite:./revisit.db."
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
    /// Start the HTTP server (creates or upgrades the schema first).
    Serve {
        /// Seed the demo entity (idempotent) and allow running without a JWT secret. Never in
        /// production: the demo users' passwords are their names.
        #[arg(long)]
        demo: bool,
        /// With --demo on SQLite: delete the database file first, so the demo starts anew with
        /// today's dates (everything in that file is lost).
        #[arg(long, requires = "demo")]
        reset_demo: bool,
    },
    /// Create or upgrade the database schema, say which, then exit.
    Migrate,
    /// Set up an installation: the schema, a new entity with the built-in scheduler configured,
    /// and the entity's first admin (whose password is asked for). The admin then manages the
    /// entity's users over HTTP (/admin/v1/users).
    Init {
        /// The new entity's id: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.
        #[arg(long, value_name = "ENTITY")]
        entity: String,
        /// The first admin's user name (unique across the installation).
        #[arg(long, value_name = "NAME")]
        admin: String,
    },
    /// Load the built-in scheduler's work centers, technicians and order types from a JSON file
    /// (`{"WorkCenters": [...], "Technicians": [...], "OrderTypes": [...]}`) or a CSV file with
    /// `--kind`; all rows are checked, and every error listed, before anything is written.
    Import {
        /// The entity to load into; it must exist unless --create-entity is given.
        #[arg(long, value_name = "ENTITY")]
        entity: String,
        /// What the file holds: workcenters, technicians or ordertypes (required for CSV and for
        /// a JSON array).
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// Create the entity if it does not exist.
        #[arg(long)]
        create_entity: bool,
        /// The JSON or CSV file (examples in examples/import/).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Manage users on the server's host (an entity's admin can also do it over HTTP).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user, or replace the role and password of an existing one of the same entity.
    /// The password is asked for on a terminal (not echoed), else read from standard input.
    Add {
        /// The user's entity; it must exist unless --create-entity is given.
        #[arg(long, value_name = "ENTITY")]
        entity: String,
        /// admin, dispatcher or technician.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// Create the entity if it does not exist.
        #[arg(long)]
        create_entity: bool,
        /// The user name, unique across the installation (1 to 64 characters).
        #[arg(value_name = "NAME")]
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

/// Logs go to standard error: text (coloured only on a terminal) or JSON lines.
fn init_logging() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_env("REVISIT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("REVISIT_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// An entity id for a new entity: stricter than what the store accepts, so that ids stay easy
/// to type, quote and put in a URL.
pub(crate) fn check_new_entity(s: &str) -> anyhow::Result<EntityId> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        anyhow::bail!(
            "the entity id {s:?} is not allowed: use 1 to 64 letters, digits, '.', '_' or '-', \
             starting with a letter or digit"
        );
    }
    EntityId::parse(s).map_err(anyhow::Error::msg)
}

/// The entity named on the command line: it must exist, unless `create` (then its name is
/// checked, and [`create_if_new`] creates it once everything else has been checked).
async fn entity_arg(store: &Store, raw: &str, create: bool) -> anyhow::Result<(EntityId, bool)> {
    let entity = EntityId::parse(raw).map_err(anyhow::Error::msg)?;
    if store.entity_exists(&entity).await? {
        return Ok((entity, false));
    }
    if !create {
        anyhow::bail!(
            "no entity {raw:?} in this database: create it with `revisit init --entity {raw} \
             --admin NAME`, or pass --create-entity"
        );
    }
    Ok((check_new_entity(raw)?, true))
}

async fn create_if_new(store: &Store, (entity, new): &(EntityId, bool)) -> anyhow::Result<()> {
    if *new {
        store.ensure_entity(entity).await?;
        println!("created entity {entity}");
    }
    Ok(())
}

/// A new password: asked for twice on a terminal without echo, else read from standard input
/// (one line; the line break is not part of it).
fn read_password(user: &UserName) -> anyhow::Result<String> {
    let pw = if std::io::stdin().is_terminal() {
        let pw = rpassword::prompt_password(format!("Password for {user}: "))?;
        if pw.is_empty() {
            anyhow::bail!("no password given");
        }
        let again = rpassword::prompt_password("The same password again: ")?;
        if again != pw {
            anyhow::bail!("the two passwords differ; nothing was changed");
        }
        pw
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        let line = s.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            anyhow::bail!(
                "no password given (standard input is not a terminal: write the password to it, \
                 e.g. `printf '%s\\n' \"$PW\" | revisit ...`)"
            );
        }
        line
    };
    if let Err(reason) = password::check_length(&pw) {
        anyhow::bail!(
            "{reason} (it has {}); nothing was changed",
            pw.chars().count()
        );
    }
    Ok(pw)
}

/// Opens the store after checking the database can be reached (errors name the database and
/// the cause), and says what happened to its schema.
async fn open_store(config: &Config) -> anyhow::Result<(Store, String)> {
    let url = config.database_url.expose();
    schema::probe(url, config.database_statement_timeout).await?;
    let before = schema::applied_migrations(url).await;
    let store = Store::open(url, &config.store_options())
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the {}: {e:#}", schema::describe(url)))?;
    let after = schema::applied_migrations(url).await.unwrap_or(0);
    let what = schema::describe(url);
    let said = match before {
        None | Some(0) => format!("created the schema in the {what} ({after} migrations)"),
        Some(b) if b == after => {
            format!("the schema of the {what} is up to date ({after} migrations)")
        }
        Some(b) => format!(
            "applied {} migrations to the {what} (now {after})",
            after - b
        ),
    };
    Ok((store, said))
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            let (_store, said) = open_store(&config).await?;
            println!("{said}");
            Ok(())
        }
        Command::Init { entity, admin } => init(&config, &entity, &admin).await,
        Command::Import {
            entity,
            kind,
            create_entity,
            file,
        } => {
            let (store, _) = open_store(&config).await?;
            let arg = entity_arg(&store, &entity, create_entity).await?;
            create_if_new(&store, &arg).await?;
            let entity = arg.0;
            let done = crate::import::import(&store, &entity, &file, kind.as_deref()).await?;
            println!("imported {} objects into entity {entity}", done.written);
            if !done.without_login.is_empty() {
                println!(
                    "technicians without a login (create them: POST /admin/v1/users or `revisit user add --role technician`): {}",
                    done.without_login.join(", ")
                );
            }
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    entity,
                    role,
                    create_entity,
                    name,
                },
        } => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let name = UserName::parse(&name).map_err(anyhow::Error::msg)?;
            let (store, _) = open_store(&config).await?;
            let arg = entity_arg(&store, &entity, create_entity).await?;
            let pw = read_password(&name)?;
            let hash = password::hash_blocking(pw).await?;
            create_if_new(&store, &arg).await?;
            let entity = arg.0;
            match store.add_user(&entity, &name, role, &hash).await {
                Ok(AddUser::Created) => {
                    println!("created user {name} ({}) in entity {entity}", role.as_str())
                }
                Ok(AddUser::Updated) => {
                    println!("updated user {name} ({}) in entity {entity}", role.as_str())
                }
                Err(crate::store::StoreError::Duplicate(_)) => {
                    anyhow::bail!("the user name {name} is taken in another entity")
                }
                Err(e) => return Err(e.into()),
            }
            if role == Role::Technician
                && store
                    .get_sched(&entity, SchedKind::Technicians, name.as_str())
                    .await?
                    .is_none()
            {
                println!(
                    "note: {name} has no scheduler technician profile yet, so the built-in \
                     scheduler offers them no work: import one (`revisit import --kind technicians`) \
                     or PUT /scheduling/v1/technicians/{name}"
                );
            }
            Ok(())
        }
        Command::Serve { demo, reset_demo } => {
            if reset_demo {
                reset_demo_database(config.database_url.expose())?;
            }
            if demo && config.jwt_secret.is_none() {
                tracing::warn!(
                    "demo mode: no JWT secret configured, using a random one (tokens end with the process)"
                );
                config.jwt_secret = Some(Secret::new(crate::auth::random_hex(32)));
            }
            config.require_jwt_secret()?;
            schema::probe(
                config.database_url.expose(),
                config.database_statement_timeout,
            )
            .await?;
            let what = schema::describe(config.database_url.expose());
            let state = AppState::build(config)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the {what}: {e:#}"))?;
            if demo {
                tracing::warn!(
                    "demo mode: demo users have their user name as password; never use --demo in production"
                );
                crate::demo::seed(&state.store).await?;
            }
            let listener = tokio::net::TcpListener::bind(state.config.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", state.config.listen))?;
            tracing::info!(addr = %listener.local_addr()?, config = ?state.config, "serving");
            let store = state.store.clone();
            app::serve(listener, state, shutdown_signal()).await?;
            store.close().await;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// `revisit init`: schema, entity with the built-in scheduler configured, first admin.
async fn init(config: &Config, entity: &str, admin: &str) -> anyhow::Result<()> {
    let entity = check_new_entity(entity)?;
    let admin = UserName::parse(admin).map_err(anyhow::Error::msg)?;
    let (store, said) = open_store(config).await?;
    println!("{said}");
    if store.entity_exists(&entity).await? {
        anyhow::bail!(
            "the entity {entity} exists already; its admins manage its users with /admin/v1/users \
             (or `revisit user add --entity {entity}`)"
        );
    }
    if store.find_user(admin.as_str()).await?.is_some() {
        anyhow::bail!(
            "the user name {admin} is taken (user names are unique across the installation)"
        );
    }
    let pw = read_password(&admin)?;
    let hash = password::hash_blocking(pw).await?;
    // The built-in scheduler for both endpoints, and follow-ups allowed unless a work order's
    // own rule says otherwise: what an installation needs to take its first booking. Written
    // with the entity and its admin in one transaction: a failure leaves none of them.
    let defaults: serde_json::Map<String, serde_json::Value> = [
        (
            "RestApi",
            json!({"SearchAppts": "builtin:", "BookJob": "builtin:"}),
        ),
        (
            "WorkOrderRules",
            json!({"Default": {"CanScheduleFollowup": true}}),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    store
        .create_entity_with_admin(&entity, &defaults, &admin, &hash)
        .await
        .map_err(|e| anyhow::anyhow!("creating the entity {entity} and its admin {admin}: {e}"))?;
    println!("created entity {entity} (built-in scheduler) and its admin {admin}");
    println!(
        "next: load work centers, technicians and order types (`revisit import --entity {entity} FILE`), \
         then `revisit serve`"
    );
    Ok(())
}

/// `serve --demo --reset-demo`: removes the SQLite database file (and its WAL files).
fn reset_demo_database(url: &str) -> anyhow::Result<()> {
    if !url.starts_with("sqlite:") {
        anyhow::bail!(
            "--reset-demo works on a SQLite file only; for PostgreSQL drop and create the database"
        );
    }
    let what = schema::describe(url);
    let Some(path) = url
        .strip_prefix("sqlite:")
        .map(|r| r.strip_prefix("//").unwrap_or(r))
        .and_then(|r| r.split('?').next())
        .filter(|p| !p.is_empty() && *p != ":memory:")
        .map(PathBuf::from)
    else {
        return Ok(());
    };
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot delete {}: {e}", PathBuf::from(p).display()),
        }
    }
    tracing::warn!("demo reset: deleted the {what}");
    Ok(())
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
