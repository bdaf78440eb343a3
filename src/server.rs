//! The HTTP server under the router: accepts connections within limits, serves each with hyper
//! under read and idle timeouts, and answers in the error object even where hyper answers by
//! itself. Slow or hostile clients can hold only what the limits allow:
//!
//! - at most `max_connections` open connections, and `max_connections_per_client` from one
//!   address; a connection past either limit gets a 503 error object and is closed at once;
//! - a request's headers must arrive within `header_read_timeout` (on a kept-alive connection,
//!   the next request's too), its body within `body_read_timeout` (a 408 after that, set in the
//!   router), and a connection on which nothing moves for `idle_timeout` is closed;
//! - hyper's own answers to requests it cannot parse (400 for a malformed request, 414 for a URI
//!   too long, 431 for headers too large or too many) are bare status lines: they are rewritten
//!   into the error object, with `content-type: application/json`, like every other error.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};

use crate::error::ApiError;

/// Open connections per client address.
type Clients = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// What a connection may hold (README, "Configuration").
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// 0: no limit per client address (behind a load balancer every connection comes from it).
    pub max_connections_per_client: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting and lets open
/// connections finish their requests for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    let max = effective_max_connections(limits.max_connections);
    let slots = Arc::new(Semaphore::new(max));
    let clients: Clients = Default::default();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.idle_timeout / 2)
        .keep_alive_timeout(limits.header_read_timeout)
        .max_concurrent_streams(128);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // say so at most once a second, and give the process a moment.
                    if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "accept failed");
                        last_accept_error = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(hold) = Hold::take(
            &slots,
            &clients,
            peer.ip(),
            limits.max_connections_per_client,
        ) else {
            refuse(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Guarded::new(stream, limits.idle_timeout));
        let conn = builder
            .serve_connection(io, TowerToHyperService::new(router.clone()))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(hold);
        });
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "stopped accepting; letting requests in flight finish"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "shutdown grace period over; dropping remaining connections"
        );
    }
}

/// The connection limit, kept below the process's file descriptor limit (raised to its hard
/// limit first), so that accepting never fails for want of descriptors while the database pool,
/// outbound calls and log files need some.
fn effective_max_connections(configured: usize) -> usize {
    const RESERVED: u64 = 128;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit > RESERVED => {
            let cap = (limit - RESERVED) as usize;
            if configured > cap {
                tracing::warn!(
                    configured,
                    cap,
                    "max_connections lowered to fit the file descriptor limit"
                );
            }
            configured.min(cap).max(1)
        }
        _ => configured.max(1),
    }
}

/// A connection's place within the limits, given back when it is dropped.
struct Hold {
    _slot: OwnedSemaphorePermit,
    client: Option<(IpAddr, Clients)>,
}

impl Hold {
    fn take(
        slots: &Arc<Semaphore>,
        clients: &Clients,
        ip: IpAddr,
        per_client: usize,
    ) -> Option<Hold> {
        let slot = slots.clone().try_acquire_owned().ok()?;
        if per_client == 0 {
            return Some(Hold {
                _slot: slot,
                client: None,
            });
        }
        let mut map = clients.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= per_client {
            return None;
        }
        *n += 1;
        Some(Hold {
            _slot: slot,
            client: Some((ip, clients.clone())),
        })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some((ip, clients)) = &self.client {
            let mut map = clients.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(ip);
                }
            }
        }
    }
}

/// Answers a connection past the limits with a 503 error object, without waiting for it.
fn refuse(stream: TcpStream) {
    let answer = http_answer(&ApiError::too_many_connections(), &[("retry-after", "1")]);
    // The answer fits the socket's send buffer; a client that does not read it loses it.
    let _ = stream.try_write(&answer);
}

/// An HTTP/1.1 answer carrying the error object, closing the connection.
fn http_answer(err: &ApiError, extra: &[(&str, &str)]) -> Vec<u8> {
    let body = serde_json::to_vec(&err.body()).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nx-request-id: {}\r\n",
        err.status.as_u16(),
        err.status.canonical_reason().unwrap_or(""),
        body.len(),
        uuid::Uuid::new_v4()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// If `buf` is exactly one of hyper's own bare error answers (a 4xx head with
/// `content-length: 0`), the same answer as the error object.
fn rewrite_bare_error(buf: &[u8]) -> Option<Vec<u8>> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    if !buf.ends_with(b"\r\n\r\n") || buf.windows(4).filter(|w| w == b"\r\n\r\n").count() != 1 {
        return None;
    }
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    let head = String::from_utf8_lossy(buf).to_ascii_lowercase();
    if !(400..500).contains(&status) || !head.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    Some(http_answer(&ApiError::bare(status), &[]))
}

/// A client connection with an idle timeout, whose bare error answers become error objects.
struct Guarded {
    stream: TcpStream,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    /// An answer being written in place of hyper's: its bytes, how many are written, and how
    /// many of hyper's it stands for.
    rewritten: Option<(Vec<u8>, usize, usize)>,
}

impl Guarded {
    fn new(stream: TcpStream, idle_timeout: Duration) -> Self {
        Self {
            stream,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            rewritten: None,
        }
    }

    fn touch(&mut self) {
        let deadline = Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for too long",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewritten.is_none()
            && let Some(answer) = rewrite_bare_error(buf)
        {
            this.rewritten = Some((answer, 0, buf.len()));
        }
        if let Some((answer, written, stands_for)) = &mut this.rewritten {
            while *written < answer.len() {
                let n = ready!(Pin::new(&mut this.stream).poll_write(cx, &answer[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
            let n = *stands_for;
            this.rewritten = None;
            this.touch();
            return Poll::Ready(Ok(n));
        }
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            this.touch();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    // One buffer per write, so that an answer reaches `poll_write` whole.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_4xx_head_becomes_the_error_object_and_nothing_else_is_touched() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite_bare_error(bare).expect("rewritten")).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("content-type: application/json\r\n"), "{out}");
        let body: serde_json::Value =
            serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["status"], 431);
        assert_eq!(body["type"], "urn:revisit:error:headers-too-large");
        // An answer with a body, a success, or more than one head is left alone.
        assert!(
            rewrite_bare_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}")
                .is_none()
        );
        assert!(
            rewrite_bare_error(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none()
        );
        assert!(rewrite_bare_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
