//! What the command line says about a database before and after it opens it: where it is (with
//! no password), why it cannot be reached, and how many migrations its schema has.

use std::{path::PathBuf, str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, Connection,
    postgres::PgConnectOptions,
    sqlite::{SqliteConnectOptions, SqliteConnection},
};

/// The database named by a URL, described without its credentials: a SQLite file's path, or a
/// PostgreSQL `host:port/database`.
pub fn describe(url: &str) -> String {
    if url.starts_with("sqlite:") {
        match sqlite_path(url) {
            Some(p) => format!("SQLite file {}", p.display()),
            None => "SQLite (in memory)".to_string(),
        }
    } else {
        match url::Url::parse(url) {
            Ok(u) => format!(
                "PostgreSQL {}:{}{}",
                u.host_str().unwrap_or("localhost"),
                u.port().unwrap_or(5432),
                u.path()
            ),
            Err(_) => "PostgreSQL (unparsable URL)".to_string(),
        }
    }
}

fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Checks that the database can be reached, in words an operator can act on: the SQLite file's
/// folder missing, PostgreSQL's host refusing or not answering, a password refused. Makes one
/// connection (PostgreSQL) and no change.
pub async fn probe(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let what = describe(url);
    if url.starts_with("sqlite:") {
        if let Some(path) = sqlite_path(url) {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dir.is_dir() {
                anyhow::bail!(
                    "cannot open the {what}: the folder {} does not exist",
                    dir.display()
                );
            }
            if path.is_dir() {
                anyhow::bail!("cannot open the {what}: it is a folder");
            }
        }
        return Ok(());
    }
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("the PostgreSQL URL is not valid: {e}"))?;
    match tokio::time::timeout(timeout, opts.connect()).await {
        Err(_) => anyhow::bail!(
            "cannot reach the {what}: no answer within {} ms",
            timeout.as_millis()
        ),
        Ok(Err(e)) => anyhow::bail!("cannot reach the {what}: {}", cause(&e)),
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Ok(())
        }
    }
}

/// The root cause of a connection error, as the operating system or the server said it.
fn cause(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Tls(t) => format!("TLS: {t}"),
        other => other.to_string(),
    }
}

/// How many migrations the database has applied: `None` when it has no schema yet (or, for
/// SQLite, no file). Reads only.
pub(crate) async fn applied_migrations(url: &str) -> Option<i64> {
    const COUNT: &str = "SELECT COUNT(*) FROM _sqlx_migrations WHERE success";
    if url.starts_with("sqlite:") {
        let opts = SqliteConnectOptions::from_str(url)
            .ok()?
            .create_if_missing(false)
            .read_only(true);
        let mut c = SqliteConnection::connect_with(&opts).await.ok()?;
        let n = sqlx::query_scalar::<_, i64>(COUNT)
            .fetch_one(&mut c)
            .await
            .ok();
        let _ = c.close().await;
        n
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.ok()?;
        let n = sqlx::query_scalar::<_, i64>(COUNT)
            .fetch_one(&mut c)
            .await
            .ok();
        let _ = c.close().await;
        n
    }
}
