//! The command line as an operator meets it: the real binary, its messages and exit codes.

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};

/// Runs `revisit args` in `dir` on the SQLite file `dir/r.db`, with `stdin` (not a terminal).
fn revisit(dir: &Path, args: &[&str], stdin: &str) -> Output {
    revisit_on(dir, &format!("sqlite:{}/r.db", dir.display()), args, stdin)
}

fn revisit_on(dir: &Path, db: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(args)
        .current_dir(dir)
        .env("REVISIT_DATABASE_URL", db)
        .env("REVISIT_DATABASE_STATEMENT_TIMEOUT_MS", "2000")
        .env_remove("REVISIT_JWT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("revisit");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    child.wait_with_output().expect("output")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn fails_saying(o: &Output, words: &[&str]) {
    let t = text(o);
    assert!(!o.status.success(), "expected a failure:\n{t}");
    for w in words {
        assert!(t.contains(w), "{w:?} not in:\n{t}");
    }
}

#[track_caller]
fn succeeds_saying(o: &Output, words: &[&str]) {
    let t = text(o);
    assert!(o.status.success(), "expected success:\n{t}");
    for w in words {
        assert!(t.contains(w), "{w:?} not in:\n{t}");
    }
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    std::fs::write(dir.join(name), content).expect("write file");
    name.to_string()
}

#[test]
fn migrate_says_whether_it_created_the_schema_or_found_it_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    succeeds_saying(
        &revisit(dir.path(), &["migrate"], ""),
        &["created the schema in the SQLite file"],
    );
    succeeds_saying(&revisit(dir.path(), &["migrate"], ""), &["is up to date"]);
}

#[test]
fn a_database_that_cannot_be_opened_is_named_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    fails_saying(
        &revisit_on(dir.path(), "sqlite:./no/such/folder/r.db", &["migrate"], ""),
        &["./no/such/folder", "does not exist"],
    );
    // Nothing listens on port 1: the host, the port and the cause, never the password.
    let o = revisit_on(
        dir.path(),
        "postgres://alice:s3cret@127.0.0.1:1/prod",
        &["migrate"],
        "",
    );
    fails_saying(&o, &["127.0.0.1:1/prod", "refused"]);
    assert!(!text(&o).contains("s3cret"), "{}", text(&o));
}

#[test]
fn user_add_needs_a_password_and_an_existing_entity() {
    let dir = tempfile::tempdir().unwrap();
    fails_saying(
        &revisit(
            dir.path(),
            &[
                "user", "add", "--entity", "nosuch", "--role", "admin", "ann",
            ],
            "long enough\n",
        ),
        &["no entity \"nosuch\"", "--create-entity"],
    );
    fails_saying(
        &revisit(
            dir.path(),
            &[
                "user",
                "add",
                "--create-entity",
                "--entity",
                "acme",
                "--role",
                "admin",
                "ann",
            ],
            "",
        ),
        &["no password given"],
    );
    fails_saying(
        &revisit(
            dir.path(),
            &[
                "user",
                "add",
                "--create-entity",
                "--entity",
                "a b/c",
                "--role",
                "admin",
                "ann",
            ],
            "long enough\n",
        ),
        &["the entity id \"a b/c\" is not allowed"],
    );
    succeeds_saying(
        &revisit(
            dir.path(),
            &[
                "user",
                "add",
                "--create-entity",
                "--entity",
                "acme",
                "--role",
                "technician",
                "ann",
            ],
            "long enough\n",
        ),
        &[
            "created entity acme",
            "created user ann (technician) in entity acme",
            "no scheduler technician profile",
        ],
    );
    // The password is never echoed back.
    let o = revisit(
        dir.path(),
        &["user", "add", "--entity", "acme", "--role", "admin", "bea"],
        "bea-secret-1\n",
    );
    succeeds_saying(&o, &["created user bea (admin)"]);
    assert!(!text(&o).contains("bea-secret-1"));
    // The same length rules as the admin API: 8 to 1024 characters.
    fails_saying(
        &revisit(
            dir.path(),
            &["user", "add", "--entity", "acme", "--role", "admin", "cy"],
            "short\n",
        ),
        &["8 to 1024 characters", "it has 5", "nothing was changed"],
    );
    fails_saying(
        &revisit(
            dir.path(),
            &["user", "add", "--entity", "acme", "--role", "admin", "cy"],
            &format!("{}\n", "x".repeat(1025)),
        ),
        &["8 to 1024 characters", "it has 1025", "nothing was changed"],
    );
}

#[test]
fn help_describes_every_argument() {
    let dir = tempfile::tempdir().unwrap();
    for (args, words) in [
        (
            &["user", "add", "--help"][..],
            &[
                "--entity <ENTITY>",
                "must exist",
                "--role <ROLE>",
                "admin, dispatcher or technician",
                "<NAME>",
                "unique across",
            ][..],
        ),
        (
            &["import", "--help"][..],
            &[
                "--entity <ENTITY>",
                "--kind <KIND>",
                "--create-entity",
                "<FILE>",
                "JSON or CSV",
            ][..],
        ),
        (
            &["init", "--help"][..],
            &["--entity <ENTITY>", "--admin <NAME>"][..],
        ),
    ] {
        succeeds_saying(&revisit(dir.path(), args, ""), words);
    }
}

#[test]
fn import_lists_every_bad_row_names_the_file_and_checks_kinds_and_references() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails_saying(
        &revisit(d, &["import", "--entity", "nosuch", "x.json"], ""),
        &["no entity \"nosuch\"", "--create-entity"],
    );
    succeeds_saying(
        &revisit(
            d,
            &[
                "user",
                "add",
                "--create-entity",
                "--entity",
                "acme",
                "--role",
                "admin",
                "ada",
            ],
            "long enough\n",
        ),
        &["created user ada"],
    );
    // Two bad rows, one of format and one of content: both listed.
    let wc = write(
        d,
        "wc.csv",
        "ServiceAreaID,Name,TimeZone,Lat,Lon\nN,North,America/Chicago,not-a-number,-87.6\nS,South,Mars/Base,41.8,-87.6\nC,Centre,America/Chicago,41.9,-87.6\n",
    );
    fails_saying(
        &revisit(
            d,
            &["import", "--entity", "acme", "--kind", "workcenters", &wc],
            "",
        ),
        &[
            "wc.csv",
            "nothing imported",
            "line 2: Lat: not a number",
            "line 3:",
        ],
    );
    // The wrong --kind says which kind the file is.
    let techs = write(
        d,
        "techs.csv",
        "UserName,Name,ServiceAreaIDs,Skills,HomeLat,HomeLon,Shifts\nann,Ann,NOPE,HVAC:1,41.9,-87.6,Mon-Fri 08:00-17:00\n",
    );
    fails_saying(
        &revisit(
            d,
            &[
                "import",
                "--entity",
                "acme",
                "--kind",
                "workcenters",
                &techs,
            ],
            "",
        ),
        &[
            "not a workcenters file",
            "its columns are those of --kind technicians",
        ],
    );
    fails_saying(
        &revisit(
            d,
            &["import", "--entity", "acme", "--kind", "people", &techs],
            "",
        ),
        &["unknown kind \"people\""],
    );
    // A technician of a work center that exists nowhere.
    fails_saying(
        &revisit(
            d,
            &[
                "import",
                "--entity",
                "acme",
                "--kind",
                "technicians",
                &techs,
            ],
            "",
        ),
        &["techs.csv", "line 2", "work center \"NOPE\""],
    );
    // Malformed JSON names the file.
    let bad = write(d, "setup.json", "{\"WorkCenters\": [");
    fails_saying(
        &revisit(d, &["import", "--entity", "acme", &bad], ""),
        &["setup.json", "not valid JSON"],
    );
    // Nothing of the above was written; a good file then is, and names the missing logins.
    let good = write(
        d,
        "good.json",
        r#"{"WorkCenters": [{"ServiceAreaID": "N", "Name": "North", "TimeZone": "America/Chicago", "Lat": 41.9, "Lon": -87.6}],
            "Technicians": [{"UserName": "ann", "Name": "Ann", "ServiceAreaIDs": ["N"], "Skills": [], "Home": {"Lat": 41.9, "Lon": -87.6},
                             "Shifts": [{"Days": ["Mon"], "Start": "08:00", "End": "17:00"}]}]}"#,
    );
    succeeds_saying(
        &revisit(d, &["import", "--entity", "acme", &good], ""),
        &[
            "imported 2 objects into entity acme",
            "technicians without a login",
            "ann",
        ],
    );
}

#[test]
fn logs_written_to_a_file_have_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 cannot be bound by an unprivileged process, nor twice: either way `serve` logs its
    // demo warnings, then fails.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_revisit"))
        .args(["serve", "--demo"])
        .current_dir(dir.path())
        .env(
            "REVISIT_DATABASE_URL",
            format!("sqlite:{}/r.db", dir.path().display()),
        )
        .env("REVISIT_LISTEN", &addr)
        .env("REVISIT_LOG", "warn")
        .env_remove("REVISIT_JWT_SECRET")
        .stdin(Stdio::null())
        .output()
        .expect("revisit");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("WARN") && err.contains("cannot listen on"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "colour escapes in: {err:?}");
}
