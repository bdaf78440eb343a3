//! What the process-level tests (`crash.rs`, `nodes.rs`, `notify_crash.rs`,
//! `passthrough_crash.rs`) share: a `revisit serve` child process on a port of its own, killed
//! when dropped, and a database of the test's own, dropped when the test ends. Each test file
//! uses part of it.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use sqlx::Connection;

/// A `revisit serve` process, killed with SIGKILL when dropped (also when the test fails: an
/// orphan would keep the build lock's file descriptor open and block every later build).
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `revisit serve` on `db_url`, signing tokens with `secret`, with `env` added to
    /// its environment, and waits until it answers `/readyz`.
    pub async fn start(db_url: &str, secret: &str, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_revisit"));
        command
            .arg("serve")
            .env("REVISIT_LISTEN", format!("127.0.0.1:{port}"))
            .env("REVISIT_DATABASE_URL", db_url)
            .env("REVISIT_JWT_SECRET", secret)
            .env("REVISIT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut server = Server {
            child: command.spawn().expect("start revisit"),
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = http();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
                && r.status() == 200
            {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("revisit exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "revisit on port {port} did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP client for the tests (plain HTTP on loopback; rustls wants its provider chosen).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The database of one test: a SQLite file in a directory of its own, or a PostgreSQL database
/// of its own, dropped when the test ends (also on panic).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        TestDb {
            url: format!("sqlite:{}", dir.path().join("revisit.db").display()),
            _dir: Some(dir),
            pg_admin: None,
        }
    }

    /// A new database on the server `REVISIT_TEST_POSTGRES_URL` names; `None` (the test
    /// skips) without it.
    pub async fn postgres() -> Option<TestDb> {
        match std::env::var("REVISIT_TEST_POSTGRES_URL") {
            Ok(admin) if !admin.is_empty() => Some(Self::postgres_at(&admin).await),
            _ => {
                eprintln!("skipped: REVISIT_TEST_POSTGRES_URL is not set");
                None
            }
        }
    }

    async fn postgres_at(admin: &str) -> TestDb {
        let name = format!("revisit_t_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(admin)
            .await
            .expect("admin connection");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        let mut url = url::Url::parse(admin).unwrap();
        url.set_path(&format!("/{name}"));
        TestDb {
            url: url.to_string(),
            _dir: None,
            pg_admin: Some((admin.to_string(), name)),
        }
    }

    /// One number from SQL, on whichever database this is.
    pub async fn scalar(&self, query: &str) -> i64 {
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(query).fetch_one(&mut c).await.unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(query).fetch_one(&mut c).await.unwrap()
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg_admin.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread can.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}
