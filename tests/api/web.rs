//! The browser apps as a static server serves them: the shell at `/` (no-cache, ETag, a strict
//! content security policy), its files under a versioned path (immutable), compressed as the
//! client accepts, and 304 for what the client already has.

use crate::helpers::{Backend, spawn_app};

async fn get(
    app: &crate::helpers::TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{path}", app.address));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("an answer")
}

fn h<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_shell_is_revalidated_its_versioned_files_are_immutable_and_both_come_compressed() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let version = &revisit::web::site().version;

    let shell = get(&app, "/", &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(shell.status(), 200);
    assert_eq!(h(&shell, "cache-control"), "no-cache");
    assert_eq!(h(&shell, "content-encoding"), "br");
    assert_eq!(h(&shell, "vary"), "Accept-Encoding");
    assert!(h(&shell, "content-type").starts_with("text/html"));
    assert!(h(&shell, "content-security-policy").contains("script-src 'self'"));
    let etag = h(&shell, "etag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with("-br\""), "{etag}");

    // Without compression the shell names its files under the build's version.
    let plain = get(&app, "/", &[]).await;
    assert!(h(&plain, "content-encoding").is_empty());
    let html = plain.text().await.unwrap();
    let js = format!("/static/{version}/tech/app.js");
    assert!(html.contains(&js), "{html}");

    // What the client has is a 304 without a body.
    let again = get(
        &app,
        "/",
        &[("accept-encoding", "br"), ("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status(), 304);
    assert_eq!(h(&again, "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    // The versioned files: a year, immutable, gzip when brotli is not accepted.
    let file = get(&app, &js, &[("accept-encoding", "gzip")]).await;
    assert_eq!(file.status(), 200);
    assert_eq!(
        h(&file, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(h(&file, "content-encoding"), "gzip");
    assert!(h(&file, "content-type").starts_with("text/javascript"));
    assert_eq!(h(&file, "x-content-type-options"), "nosniff");

    // The service worker is revalidated like the shell, and lists this version's files.
    let sw = get(&app, "/sw.js", &[]).await;
    assert_eq!(sw.status(), 200);
    assert_eq!(h(&sw, "cache-control"), "no-cache");
    let sw = sw.text().await.unwrap();
    assert!(
        sw.contains(&format!("\"/static/{version}/shared/base.css\"")),
        "{sw}"
    );

    // Another version's files are gone (its service worker kept them), and unknown files are
    // the API's 404 object.
    let old = get(&app, "/static/0123456789ab/tech/app.js", &[]).await;
    assert_eq!(old.status(), 404);
    let missing = get(&app, &format!("/static/{version}/tech/nothing.js"), &[]).await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert!(body["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn the_first_page_is_far_under_150_kb_compressed() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let version = &revisit::web::site().version;
    let shell = get(&app, "/", &[]).await.text().await.unwrap();
    // Every file the shell names, and the modules they import.
    let mut total = 0usize;
    let mut names: Vec<String> = shell
        .split('"')
        .filter(|s| s.starts_with(&format!("/static/{version}/")))
        .map(str::to_string)
        .collect();
    names.push("/".into());
    for extra in ["tech/outbox.js", "shared/places.js", "tech/app.js"] {
        names.push(format!("/static/{version}/{extra}"));
    }
    names.sort();
    names.dedup();
    for n in &names {
        let r = get(&app, n, &[("accept-encoding", "br, gzip")]).await;
        assert_eq!(r.status(), 200, "{n}");
        total += r.bytes().await.unwrap().len();
    }
    assert!(total < 150 * 1024, "{total} bytes over {names:?}");
}
