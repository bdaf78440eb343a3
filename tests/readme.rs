//! The README's procedures, run as written: the demo walk-through against `serve --demo`, and
//! the production procedure's five steps from an empty folder to the first booking. The shell
//! blocks are read from README.md itself, so a README that drifts breaks these tests. The only
//! changes made to them: the port (`localhost:8080` becomes a free one, so tests can run beside
//! other servers) and, in the production procedure, `cargo build --release && ` (this test runs
//! the binary `cargo test` built, put first on the `PATH`).

use std::{
    io::Write,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

/// The text of the README section whose heading starts with `heading`, up to the next `## `.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {heading}"))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// The ```sh blocks of a section, in order.
fn sh_blocks(section: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find("```sh\n") {
        let body = &rest[i + 6..];
        let end = body.find("\n```").expect("a closed code block");
        out.push(body[..end].to_string());
        rest = &body[end + 4..];
    }
    out
}

fn binary_dir() -> String {
    Path::new(env!("CARGO_BIN_EXE_revisit"))
        .parent()
        .expect("the binary's folder")
        .display()
        .to_string()
}

/// A process (a shell script, or a server), killed when dropped, also when a test fails.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server a script started in the background, stopped (by the process id it wrote to
/// `revisit.pid`) when dropped.
struct PidFile(std::path::PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let Ok(text) = std::fs::read_to_string(&self.0) else {
            return;
        };
        if let Ok(pid) = text.trim().parse::<u32>()
            && pid > 1
        {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// Runs `script` with `sh` in `dir`, `stdin` written to it; returns
/// what it printed, standard error included. Panics on a non-zero exit or after two minutes.
fn run_script(dir: &Path, script: &str, env: &[(&str, String)], stdin: &str) -> String {
    let out_path = dir.join("script.out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("set -eu\n{script}"))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out)
        .env_remove("REVISIT_DATABASE_URL")
        .env_remove("REVISIT_JWT_SECRET")
        .env("REVISIT_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let _server = PidFile(dir.join("revisit.pid"));
    let mut group = Group(cmd.spawn().expect("sh"));
    {
        let mut input = group.0.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = group.0.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            panic!(
                "the script did not finish in 2 minutes; output:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let printed = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(status.success(), "the script failed ({status}):\n{printed}");
    printed
}

/// `revisit serve --demo [args]` on `port` in `dir`, waited for until ready.
fn serve_demo(dir: &Path, port: u16, args: &[&str]) -> Group {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_revisit"));
    cmd.args(["serve", "--demo"])
        .args(args)
        .current_dir(dir)
        .env("REVISIT_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("REVISIT_DATABASE_URL")
        .env_remove("REVISIT_JWT_SECRET")
        .env("REVISIT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = Group(cmd.spawn().expect("start revisit"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let ok = Command::new("curl")
            .args(["-sf", &format!("localhost:{port}/readyz")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return server;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("serve --demo was not ready within 60 s");
}

#[test]
fn the_demo_walk_through_runs_as_written_and_reset_demo_starts_it_anew() {
    let text = readme();
    let blocks = sh_blocks(section(&text, "The demo"));
    assert_eq!(blocks.len(), 1, "The demo has one shell block");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let script = blocks[0].replace("localhost:8080", &format!("localhost:{port}"));

    let server = serve_demo(dir.path(), port, &[]);
    let out = run_script(dir.path(), &script, &[], "");
    // `echo "$WO"` printed today's (or the next working day's) Onsite order of tech01.
    let wo = out
        .lines()
        .find(|l| l.starts_with("DEMO-"))
        .unwrap_or_else(|| panic!("no order number echoed:\n{out}"))
        .to_string();
    assert!(wo.ends_with("-tech01-1"), "{wo}");
    assert!(out.contains(&format!("\"OrderNum\":\"{wo}\"")), "{out}");
    assert!(out.contains("\"OrderStatus\":4097"), "not closed:\n{out}");
    // The slot echoed is a period; the follow-up order read back names its original; the
    // follow-up list holds the booking.
    assert!(
        out.contains("{\"End\":\"") || out.contains("{\"Start\":\""),
        "no slot echoed:\n{out}"
    );
    assert!(
        out.contains(&format!("\"OriginalOrderNum\":\"{wo}\",")),
        "{out}"
    );
    assert!(out.contains("\"Followups\":[{"), "{out}");
    assert!(out.contains("\"StatusCode\":200"), "{out}");
    drop(server);

    // Run again on the same file, the order is closed: the walk-through cannot start. With
    // --reset-demo it can, and the earlier booking is gone.
    let server = serve_demo(dir.path(), port, &["--reset-demo"]);
    let out = run_script(dir.path(), &script, &[], "");
    assert!(out.lines().any(|l| l == wo), "{out}");
    let followups = out
        .rsplit("\"Followups\":")
        .next()
        .expect("the last answer");
    assert_eq!(
        followups.matches("\"OriginalOrderNum\":").count(),
        1,
        "one booking only after the reset:\n{out}"
    );
    drop(server);
}

#[test]
fn the_production_procedure_runs_as_written_in_five_steps() {
    let text = readme();
    let blocks = sh_blocks(section(&text, "Production"));
    assert!(
        (1..=5).contains(&blocks.len()),
        "the procedure has {} steps",
        blocks.len()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    // The examples the procedure imports, as in a clone of the repository.
    let examples = dir.path().join("examples/import");
    std::fs::create_dir_all(&examples).expect("examples folder");
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/import"))
        .expect("examples/import")
    {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), examples.join(entry.file_name())).expect("copy");
    }
    let port = free_port();
    let mut script = String::new();
    for (i, b) in blocks.iter().enumerate() {
        let b = b
            .replace("cargo build --release && ", "")
            .replace("localhost:8080", &format!("localhost:{port}"));
        script.push_str(&format!("echo '== step {}'\n{b}\n", i + 1));
    }
    let password = "ada-Correct-Horse-1";
    let path = format!(
        "{}:{}",
        binary_dir(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run_script(
        dir.path(),
        &script,
        &[
            ("PATH", path),
            ("REVISIT_LISTEN", format!("127.0.0.1:{port}")),
            ("ADMIN_PASSWORD", password.to_string()),
        ],
        &format!("{password}\n"),
    );
    assert!(
        out.contains("created the schema in the SQLite file ./revisit-prod.db"),
        "{out}"
    );
    assert!(
        out.contains("created entity acme (built-in scheduler) and its admin ada"),
        "{out}"
    );
    assert!(
        out.contains("technicians without a login") && out.contains("ann, bo"),
        "{out}"
    );
    assert!(
        out.contains(r#""Linked":["ann","bo"],"WithoutLogin":[],"WithoutProfile":[]"#)
            || out.contains(r#""Linked":["ann","bo"],"WithoutProfile":[],"WithoutLogin":[]"#),
        "{out}"
    );
    let step5 = out.rsplit("== step 5").next().unwrap_or_default();
    assert!(
        step5.contains("{\"OrderNum\":\"WO-1001-F"),
        "the last step books a follow-up of WO-1001:\n{out}"
    );
    // The password never shows in what the procedure printed (the server's log included).
    let log = std::fs::read_to_string(dir.path().join("revisit.log")).unwrap_or_default();
    assert!(!out.contains(password) && !log.contains(password));
}
