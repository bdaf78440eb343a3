//! What slow and hostile clients can do to the server (src/server.rs): connection limits, read
//! and idle timeouts, and the error object on every error answer, also those the HTTP server
//! gives by itself. Nothing here touches storage, so these run on SQLite only.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::{
    both_backends,
    helpers::{Backend, TestApp, spawn_app_with},
};

async fn app(tweak: impl FnOnce(&mut revisit::config::Config)) -> TestApp {
    spawn_app_with(Backend::Sqlite, tweak)
        .await
        .expect("SQLite is always available")
}

fn addr(app: &TestApp) -> std::net::SocketAddr {
    app.address
        .trim_start_matches("http://")
        .parse()
        .expect("the app's address")
}

/// A connection to the app from the loopback address `from` (127.0.0.x: another client).
async fn connect_from(app: &TestApp, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind((std::net::Ipv4Addr::from(from), 0).into())
        .expect("bind a loopback address");
    socket.connect(addr(app)).await.expect("connect")
}

/// An answer read off a raw connection: status, headers (lower-case names) and body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the platform's error object with `status` and `kind`, as JSON.
    #[track_caller]
    fn assert_error(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{:?}",
            self.headers
        );
        let v: Value = serde_json::from_str(&self.body).expect("a JSON body");
        assert_eq!(v["status"], status, "{v}");
        assert_eq!(v["type"], kind, "{v}");
        assert!(v["title"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
        assert!(self.header("x-request-id").is_some(), "{:?}", self.headers);
    }
}

/// Reads one answer (until the connection closes, or `Content-Length` bytes of body).
async fn read_answer(stream: &mut TcpStream) -> Raw {
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let mut lines = head.lines();
                let status = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .and_then(|s| s.parse().ok())
                    .expect("a status line");
                let headers = lines
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                    .collect();
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return Raw {
                    status,
                    headers,
                    body,
                };
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => panic!(
                "no complete answer; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => panic!("read failed: {e}; got {:?}", String::from_utf8_lossy(&buf)),
        }
    }
}

/// Sends `request` on a new connection and reads the answer.
async fn exchange(app: &TestApp, request: &[u8]) -> Raw {
    let mut s = connect_from(app, [127, 0, 0, 1]).await;
    // A server may answer and close before it has read everything sent: that is fine here.
    let _ = s.write_all(request).await;
    read_answer(&mut s).await
}

/// Whether the server closed the connection within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn slow_clients_past_the_connection_cap_leave_readyz_and_real_requests_answering() {
    let app = app(|c| {
        c.max_connections_per_client = 20;
        // Long enough that the slow connections stay open for the whole test.
        c.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    // Headers that never end, from another client address, past its cap.
    let mut slow = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..40 {
        let mut s = connect_from(&app, [127, 0, 0, 2]).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        slow.push(s);
    }
    // Those past the cap are answered with the error object and closed at once.
    for s in slow.iter_mut().skip(20) {
        let r = read_answer(s).await;
        r.assert_error(503, "urn:revisit:error:too-many-connections");
        assert_eq!(r.header("retry-after"), Some("1"));
        refused.push(r);
    }
    assert_eq!(refused.len(), 20);
    // Another client is served at once.
    let started = Instant::now();
    let r = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz answers");
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(format!("{}/createjwt", app.address))
        .json(&serde_json::json!({"username": "nobody", "password": "wrong"}))
        .send()
        .await
        .expect("a real request answers");
    assert_eq!(r.status(), 401);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    // The first twenty are still held open, waiting for their headers.
    for s in slow.iter_mut().take(20) {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected_after_the_header_read_timeout() {
    let app = app(|c| c.header_read_timeout = Duration::from_millis(500)).await;
    let mut s = connect_from(&app, [127, 0, 0, 1]).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    assert!(closed_within(&mut s, Duration::from_secs(3)).await);

    // A kept-alive connection waiting for its next request is closed too.
    let mut s = connect_from(&app, [127, 0, 0, 1]).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_answer(&mut s).await.status, 200);
    assert!(closed_within(&mut s, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_408_error_object() {
    let app = app(|c| c.body_read_timeout = Duration::from_millis(500)).await;
    let started = Instant::now();
    let mut s = connect_from(&app, [127, 0, 0, 1]).await;
    s.write_all(
        b"PUT /seiapi/v3/trans/WorkOrder/WO-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-access-token: t\r\nContent-Length: 100\r\n\r\n{",
    )
    .await
    .expect("write");
    // The token is checked first: an unauthenticated caller never gets to hold the body.
    let r = read_answer(&mut s).await;
    r.assert_error(401, "urn:revisit:error:unauthorized");

    let user = app
        .user("acme", "disp", revisit::domain::Role::Dispatcher)
        .await;
    let mut s = connect_from(&app, [127, 0, 0, 1]).await;
    s.write_all(
        format!(
            "PUT /seiapi/v3/trans/WorkOrder/WO-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-access-token: {}\r\nContent-Length: 100\r\n\r\n{{",
            user.token
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let r = read_answer(&mut s).await;
    r.assert_error(408, "urn:revisit:error:request-timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing was written.
    let r = app
        .client
        .get(format!("{}/seiapi/v3/trans/WorkOrder/WO-1", app.address))
        .header("x-access-token", &user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn answers_the_http_server_gives_by_itself_are_error_objects() {
    let app = app(|_| {}).await;
    // A URI of 79 KB.
    let long = format!(
        "GET /seiapi/v3/trans/WorkOrders?UserName={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(79 * 1024)
    );
    exchange(&app, long.as_bytes())
        .await
        .assert_error(414, "urn:revisit:error:uri-too-long");
    // One header of 1 MiB.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1024 * 1024)
    );
    exchange(&app, big.as_bytes())
        .await
        .assert_error(431, "urn:revisit:error:headers-too-large");
    // 3,000 headers.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..3000 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    exchange(&app, many.as_bytes())
        .await
        .assert_error(431, "urn:revisit:error:headers-too-large");
    // Two different Content-Length headers.
    exchange(
        &app,
        b"POST /createjwt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    )
    .await
    .assert_error(400, "urn:revisit:error:bad-request");
    // A malformed request line.
    exchange(&app, b"GET\x01 / HTTP/1.1\r\n\r\n")
        .await
        .assert_error(400, "urn:revisit:error:bad-request");
    // The server is still up.
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

both_backends!(
    work_order_numbers_that_are_dot_segments_are_refused_and_nothing_is_written,
    |app| async move {
        let d = app
            .user("acme", "dora", revisit::domain::Role::Dispatcher)
            .await
            .token;
        // Sent raw: a URL parser (reqwest's too) resolves `%2E` as a dot segment before sending.
        // As a pass-through `{0}` such a number would leave its path segment.
        for num in ["%2E", "%2E%2E", "%2e%2E", ".", ".."] {
            let body = r#"{"OrderStatus": 1}"#;
            let req = format!(
                "PUT /seiapi/v3/trans/WorkOrder/{num} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-access-token: {d}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let r = exchange(&app, req.as_bytes()).await;
            assert_eq!(r.status, 400, "{num}: {}", r.body);
            assert!(
                r.body.contains(r#"cannot be \".\" or \"..\""#),
                "{num}: {}",
                r.body
            );
        }
        let r = app
            .request(
                reqwest::Method::GET,
                "/seiapi/v3/trans/WorkOrders",
                Some(&d),
                None,
            )
            .await
            .expect(200);
        assert_eq!(r.body["Total"], 0, "{}", r.body);
    }
);
