//! Real Chromium for the browser tests, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`). One chromedriver serves the whole test binary; each test has its own
//! browser session (a fresh profile: its own storage and service workers), closed even when the
//! test fails. Also here: a TCP relay between the browser and the server whose network can be
//! cut, screenshots, the console's errors and the axe-core accessibility check.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, key::Key, wd::Capabilities};
use futures::FutureExt;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};

/// How long a wait for the page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The browser binary itself (Debian's `/usr/bin/chromium` is a shell wrapper around it).
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REVISIT_TEST_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let real = PathBuf::from("/usr/lib/chromium/chromium");
    if real.is_file() {
        return Some(real);
    }
    which(&["chromium", "chromium-browser", "google-chrome"])
}

struct Driver {
    url: String,
    chromium: PathBuf,
}

static DRIVER: OnceLock<Option<Driver>> = OnceLock::new();
/// Browsers at once: two cores, and each test's server runs beside its browser.
static SESSIONS: Semaphore = Semaphore::const_new(2);

/// Starts chromedriver once per test binary. A small shell watches this process and stops the
/// driver (and with it every browser it started) when the tests are over, however they end.
fn driver() -> Option<&'static Driver> {
    DRIVER
        .get_or_init(|| {
            let chromedriver = which(&["chromedriver"])?;
            let chromium = chromium()?;
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let script = r#"
                "$1" --port="$2" --allowed-ips=127.0.0.1 --log-level=SEVERE >/dev/null 2>&1 &
                d=$!
                trap 'kill $d 2>/dev/null' EXIT
                while kill -0 "$3" 2>/dev/null && kill -0 $d 2>/dev/null; do sleep 0.5; done
            "#;
            Command::new("sh")
                .args(["-c", script, "sh"])
                .arg(&chromedriver)
                .arg(port.to_string())
                .arg(std::process::id().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            // Ready when it accepts connections.
            let until = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if Instant::now() > until {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(Driver {
                url: format!("http://127.0.0.1:{port}"),
                chromium,
            })
        })
        .as_ref()
}

/// A browser session of one test.
pub struct Browser {
    pub client: Client,
    pub shots: PathBuf,
    shot_no: std::sync::atomic::AtomicU32,
    _profile: tempfile::TempDir,
}

/// Runs `test` with a fresh browser on a 360-pixel-wide screen; prints the skip line and passes
/// when chromium or chromedriver is missing. The session is closed however the test ends, and
/// a test that passed must have logged no JavaScript error.
pub async fn with_browser<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    with_browser_at(name, (360, 740, 2.0), test).await
}

/// [`with_browser`] on a screen of `(width, height, pixel ratio)`: the dispatcher's board is
/// tested on a 1280-pixel desktop and a tablet.
pub async fn with_browser_at<F, Fut>(name: &str, screen: (u32, u32, f64), test: F)
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(d) = driver() else {
        eprintln!("skipped: chromium/chromedriver not found (.ci/run installs them)");
        return;
    };
    let _permit = SESSIONS
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let profile = tempfile::tempdir().expect("a profile dir");
    let mut caps = Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": d.chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--disable-extensions", "--lang=en-GB",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "mobileEmulation": {"deviceMetrics": {"width": screen.0, "height": screen.1, "pixelRatio": screen.2, "touch": false}},
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a WebDriver session");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("browser-screenshots")
        .join(name);
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("the screenshot folder");
    let b = Arc::new(Browser {
        client: client.clone(),
        shots,
        shot_no: Default::default(),
        _profile: profile,
    });
    let outcome = std::panic::AssertUnwindSafe(test(b.clone()))
        .catch_unwind()
        .await;
    let errors = if outcome.is_ok() {
        b.script_errors().await
    } else {
        Vec::new()
    };
    if outcome.is_err() {
        b.shot("failure").await;
        let text = b.main_text().await;
        let _ = std::fs::write(b.shots.join("failure.txt"), &text);
    }
    let _ = client.close().await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
    assert!(
        errors.is_empty(),
        "JavaScript errors in the console: {errors:#?}"
    );
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits until `css` matches an element, and returns it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} within {WAIT:?}: {e}"))
    }

    /// Waits until `script` (a function body) returns true.
    pub async fn until(&self, what: &str, script: &str) {
        let until = Instant::now() + WAIT;
        loop {
            let v = self.client.execute(script, vec![]).await;
            if matches!(v, Ok(Value::Bool(true))) {
                return;
            }
            if Instant::now() > until {
                panic!("waited {WAIT:?} for {what}; last answer {v:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until some element matching `css` contains `text`.
    pub async fn until_text(&self, css: &str, text: &str) {
        let script = format!(
            "return [...document.querySelectorAll({})].some(e => e.textContent.includes({}))",
            json!(css),
            json!(text)
        );
        self.until(&format!("{css} to say {text:?}"), &script).await;
    }

    /// The text of the page's <main>.
    pub async fn main_text(&self) -> String {
        self.client
            .execute("return document.getElementById('main').innerText", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Types into the element `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear().await.ok();
        el.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Clicks the first `css` element whose text contains `text`. The page may re-render the
    /// list between the wait and the click (a search answered again): then it tries again.
    pub async fn click_text(&self, css: &str, text: &str) {
        for _ in 0..20 {
            self.until_text(css, text).await;
            let els = self
                .client
                .find_all(Locator::Css(css))
                .await
                .expect("elements");
            for el in els {
                if el.text().await.unwrap_or_default().contains(text) {
                    if el.click().await.is_ok() {
                        return;
                    }
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no {css} says {text:?}");
    }

    /// Presses Tab until the focused element matches `css` (at most 60 times): the element is
    /// reachable with the keyboard. Returns it focused.
    pub async fn tab_to(&self, css: &str) {
        let check = format!(
            "return !!document.activeElement && document.activeElement.matches({})",
            json!(css)
        );
        for _ in 0..60 {
            if self.js(&check).await == json!(true) {
                return;
            }
            self.keys(Key::Tab.to_string()).await;
        }
        panic!("{css} cannot be reached with Tab");
    }

    /// Presses keys as a keyboard does: to whatever has the focus (no element reference that a
    /// redrawn screen could make stale).
    pub async fn keys(&self, keys: String) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut a = KeyActions::new("keyboard".into());
        for c in keys.chars() {
            a = a
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(a).await.expect("keys");
    }

    /// Tab to `css` and press Enter.
    pub async fn press(&self, css: &str) {
        self.tab_to(css).await;
        self.keys(Key::Enter.to_string()).await;
    }

    /// Saves a screenshot as `<nn>-<name>.png` in the test's folder (git-ignored, under
    /// `target/tmp/browser-screenshots/`). With `REVISIT_DOC_SCREENSHOTS=1`, `doc` names a copy
    /// in `docs/screenshots/`.
    pub async fn shot_doc(&self, name: &str, doc: Option<&str>) {
        // Let the page finish drawing what the last step changed.
        let _ = self
            .client
            .execute_async(
                "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)))",
                vec![],
            )
            .await;
        let Ok(png) = self.client.screenshot().await else {
            return;
        };
        let n = self.shot_no.fetch_add(1, Ordering::SeqCst);
        let _ = std::fs::write(self.shots.join(format!("{n:02}-{name}.png")), &png);
        if let (Some(doc), Some(_)) = (doc, std::env::var_os("REVISIT_DOC_SCREENSHOTS")) {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{doc}.png")), &png);
        }
    }

    pub async fn shot(&self, name: &str) {
        self.shot_doc(name, None).await;
    }

    /// JavaScript errors the browser logged (uncaught exceptions, console.error), not the
    /// network's own lines about refused connections or error statuses, which the tests cause
    /// on purpose and the app answers in words.
    pub async fn script_errors(&self) -> Vec<String> {
        let Ok(v) = self.client.issue_cmd(BrowserLog).await else {
            return vec!["the browser's log could not be read".into()];
        };
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .filter(|e| e["source"] != "network")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Runs axe-core on the page (WCAG 2.1 A and AA rules) and fails on any violation. Passes
    /// with a note when axe-core is not installed (`npm ci --prefix tests/browser`).
    pub async fn check_accessibility(&self, screen: &str) {
        let Some(axe) = axe_source() else {
            eprintln!(
                "accessibility check skipped: axe-core not installed (npm ci --prefix tests/browser)"
            );
            return;
        };
        let loaded = self
            .client
            .execute("return typeof window.axe === 'object'", vec![])
            .await;
        if !matches!(loaded, Ok(Value::Bool(true))) {
            self.client
                .execute(&format!("{axe}\n;return true"), vec![])
                .await
                .expect("axe-core loads");
        }
        let v = self
            .client
            .execute_async(
                r#"const done = arguments[0];
                   axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                     .then(r => done(r.violations.map(v => ({id: v.id, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))))
                     .catch(e => done([{id: 'axe-error', help: String(e)}]));"#,
                vec![],
            )
            .await
            .expect("axe runs");
        assert_eq!(v, json!([]), "accessibility violations on {screen}: {v:#}");
    }
}

fn axe_source() -> Option<&'static str> {
    static AXE: OnceLock<Option<String>> = OnceLock::new();
    AXE.get_or_init(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/browser/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(p).ok()
    })
    .as_deref()
}

/// chromedriver's `GET /session/{id}/se/log` for the browser's console.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The network between the browser and the server.

/// What the relay does with the browser's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Net {
    /// Passes everything through.
    Up = 0,
    /// Closes every connection at once, new and open: the server cannot be reached.
    Down = 1,
    /// Passes requests to the server but drops its answers and closes the connection: the
    /// server acts, the browser never learns the outcome.
    LoseAnswers = 2,
}

/// A TCP relay in front of the server: the browser talks to `addr`; the test decides whether
/// the network works.
pub struct Relay {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    cut: watch::Sender<u64>,
}

impl Relay {
    pub async fn start(server: &str) -> Relay {
        let target: SocketAddr = server
            .trim_start_matches("http://")
            .parse()
            .expect("the server's address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let mode = Arc::new(AtomicU8::new(Net::Up as u8));
        let (cut, _) = watch::channel(0u64);
        let (m, tx) = (mode.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = m.load(Ordering::SeqCst);
                if mode == Net::Down as u8 {
                    drop(client);
                    continue;
                }
                let mut cut = tx.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = pipe(client, server, mode == Net::LoseAnswers as u8) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay { addr, mode, cut }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the network; open connections are closed (a keep-alive connection opened before
    /// a cut must not carry requests after it).
    pub fn set(&self, net: Net) {
        self.mode.store(net as u8, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }
}

async fn pipe(mut client: TcpStream, mut server: TcpStream, lose_answers: bool) {
    if !lose_answers {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        return;
    }
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = tokio::io::copy(&mut cr, &mut sw);
    // The first bytes of the answer mean the server has acted: drop them and hang up.
    let down = async {
        let mut buf = [0u8; 1024];
        let _ = sr.read(&mut buf).await;
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
