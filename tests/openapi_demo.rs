//! The OpenAPI document checked by real validators against the running demo:
//! `scripts/openapi_check.py` validates the document with openapi-spec-validator and every
//! answer of the demo's flow against the schema the document gives for it (jsonschema). Skipped,
//! saying so, when Python or those packages are missing.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_has_validators() -> bool {
    Command::new("python3")
        .args(["-c", "import openapi_spec_validator, jsonschema"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_openapi_document_validates_and_the_demos_answers_match_its_schemas() {
    if !python_has_validators() {
        eprintln!(
            "skipped: python3 with openapi-spec-validator and jsonschema not found (pip install openapi-spec-validator jsonschema)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_revisit"))
            .args(["serve", "--demo"])
            .current_dir(dir.path())
            .env("REVISIT_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("REVISIT_DATABASE_URL")
            .env_remove("REVISIT_JWT_SECRET")
            .env("REVISIT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start revisit"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new("curl")
            .args(["-sf", &format!("{base}/readyz")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "serve --demo not ready in 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/openapi_check.py"
        ))
        .arg(&base)
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("document valid"), "{text}");
    assert!(text.contains("demo answers match their schemas"), "{text}");
}
