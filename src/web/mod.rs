//! The browser apps: plain HTML, CSS and JavaScript modules from `web/`, compiled into the
//! binary, served the way a production static server serves them. The apps call the public
//! seiapi API like any other client; nothing here knows about work orders.
//!
//! - `web/shared/`: what every app uses (styles, the API client, the session, time zones);
//! - `web/<app>/`: one folder per app, with its shell `index.html` and service worker `sw.js`;
//!   [`APPS`] says where each is mounted (the technician's app at `/`).
//!
//! Caching: every file is served under `/static/<version>/<path>`, where the version is a hash
//! of all the embedded files, so those answers are `immutable` for a year and a new build never
//! mixes old and new modules. The shells and service workers (the only URLs a person or a
//! browser reuses) are `no-cache` with an `ETag`, so a reload costs one 304. Text is sent
//! brotli- or gzip-compressed as the client accepts, each encoding made once per process.

mod assets;

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

pub use assets::{Asset, Encoding, site};

use crate::{app::AppState, error::ApiError};

/// A browser app: the folder under `web/` that holds it and the path it is mounted at (ending
/// in `/`). Its shell is served at the mount path, its service worker beside it (so the
/// worker's scope is the app's path and nothing above it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct App {
    pub dir: &'static str,
    pub mount: &'static str,
}

/// The apps this binary serves. A second app (the dispatcher's board) is a folder under `web/`
/// and one line here.
pub(crate) const APPS: &[App] = &[
    App {
        dir: "tech",
        mount: "/",
    },
    App {
        dir: "board",
        mount: "/board/",
    },
];

/// Where the versioned files are served.
pub(crate) const STATIC_PREFIX: &str = "/static";

/// The shells' policy: only this origin's scripts, styles and API; no framing, no inline code.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    let mut r = Router::new().route(
        &format!("{STATIC_PREFIX}/{{version}}/{{*path}}"),
        get(static_file),
    );
    // `/board` as typed: the board's own path, whose service worker scope it is.
    r = r.route(
        "/board",
        get(|| async { axum::response::Redirect::permanent("/board/") }),
    );
    for app in APPS {
        let shell = format!("{}/index.html", app.dir);
        let worker = format!("{}/sw.js", app.dir);
        r = r
            .route(
                app.mount,
                get(move |h: HeaderMap| async move { serve(&h, &shell, Kind::Shell) }),
            )
            .route(
                &format!("{}sw.js", app.mount),
                get(move |h: HeaderMap| async move { serve(&h, &worker, Kind::Worker) }),
            );
    }
    r
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Shell,
    Worker,
    Versioned,
}

async fn static_file(
    headers: HeaderMap,
    Path((version, path)): Path<(String, String)>,
) -> Response {
    if version != site().version {
        // An old page asking for its own files after an upgrade: its service worker has them;
        // this build does not.
        return ApiError::not_found(format!(
            "no static files of version {version:?}; reload the page"
        ))
        .into_response();
    }
    serve(&headers, &path, Kind::Versioned)
}

fn serve(headers: &HeaderMap, path: &str, kind: Kind) -> Response {
    let Some(asset) = site().get(path) else {
        return ApiError::not_found(format!("no file {path:?}")).into_response();
    };
    let cache = match kind {
        Kind::Versioned => "public, max-age=31536000, immutable",
        Kind::Shell | Kind::Worker => "no-cache",
    };
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if kind == Kind::Shell {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    let encoding = Encoding::negotiate(headers, asset);
    let etag = asset.etag(encoding);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if if_none_match(headers, asset) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    if let Ok(v) = HeaderValue::from_str(asset.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(name) = encoding.header() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
    }
    (StatusCode::OK, h, asset.body(encoding)).into_response()
}

/// Whether `If-None-Match` names this file in any of its encodings (a weak comparison, as
/// RFC 9110 §13.1.2 asks for `If-None-Match`).
fn if_none_match(headers: &HeaderMap, asset: &Asset) -> bool {
    let Some(v) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    v.split(',').map(str::trim).any(|tag| {
        tag == "*" || {
            let tag = tag.trim_start_matches("W/");
            Encoding::ALL.iter().any(|e| asset.etag(*e) == tag)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn every_app_has_a_shell_and_a_service_worker() {
        for app in APPS {
            assert!(app.mount.starts_with('/') && app.mount.ends_with('/'));
            assert!(site().get(&format!("{}/index.html", app.dir)).is_some());
            assert!(site().get(&format!("{}/sw.js", app.dir)).is_some());
        }
    }

    #[test]
    fn the_shell_names_its_files_by_version_and_the_worker_lists_them() {
        let v = &site().version;
        let shell =
            String::from_utf8_lossy(&site().get("tech/index.html").unwrap().raw).into_owned();
        assert!(
            shell.contains(&format!("/static/{v}/tech/app.js")),
            "{shell}"
        );
        assert!(!shell.contains("%VERSION%"));
        let sw = String::from_utf8_lossy(&site().get("tech/sw.js").unwrap().raw).into_owned();
        assert!(sw.contains(&format!("/static/{v}/shared/api.js")), "{sw}");
        assert!(!sw.contains("%ASSETS%") && !sw.contains("%VERSION%"));
    }

    #[test]
    fn a_known_etag_is_not_modified_and_the_encoding_follows_accept_encoding() {
        let a = site().get("tech/app.js").unwrap();
        let any = req(&[(header::IF_NONE_MATCH, &a.etag(Encoding::Identity))]);
        assert!(if_none_match(&any, a));
        let other = req(&[(header::IF_NONE_MATCH, "\"abc\", W/\"def\"")]);
        assert!(!if_none_match(&other, a));
        let br = req(&[(header::ACCEPT_ENCODING, "gzip, deflate, br, zstd")]);
        assert_eq!(Encoding::negotiate(&br, a), Encoding::Brotli);
        let gz = req(&[(header::ACCEPT_ENCODING, "gzip;q=1.0, br;q=0")]);
        assert_eq!(Encoding::negotiate(&gz, a), Encoding::Gzip);
        assert_eq!(Encoding::negotiate(&req(&[]), a), Encoding::Identity);
    }
}
