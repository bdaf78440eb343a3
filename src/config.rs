//! Configuration: defaults, then an optional TOML file, then `REVISIT_*` environment variables.
//! Validated once at start-up; secrets are redacted in `Debug` and logs.

use std::{fmt, net::SocketAddr, path::Path, time::Duration};

use serde::Deserialize;

/// A secret value; `Debug` never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// `sqlite:PATH` or `postgres://...`.
    pub database_url: Secret,
    pub database_max_connections: u32,
    /// Statement timeout on PostgreSQL; busy timeout on SQLite.
    pub database_statement_timeout: Duration,
    /// HS256 key for tokens. Required outside `--demo`.
    pub jwt_secret: Option<Secret>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub token_lifetime: Duration,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long a booking waits for its turn among this process's bookings of the same day
    /// before it gives up with a 503.
    pub booking_queue_wait: Duration,
    /// The one outbound HTTP client (pass-through to third-party schedulers).
    pub outbound: OutboundConfig,
    /// Open connections accepted in all (lowered to fit the file descriptor limit).
    pub max_connections: usize,
    /// Open connections accepted from one client address; 0 for no limit (behind a load
    /// balancer, whose address every connection has).
    pub max_connections_per_client: usize,
    /// Time a request's headers may take to arrive, and a kept-alive connection may wait for
    /// its next request.
    pub header_read_timeout: Duration,
    /// Time a request's body may take to arrive, once its headers have (a 408 after).
    pub body_read_timeout: Duration,
    /// A connection on which nothing is received or sent for this long is closed.
    pub idle_timeout: Duration,
    /// The re-optimiser's background runs (`[reoptimize]`, `REVISIT_REOPTIMIZE_*`).
    pub reoptimize: crate::reoptimize::Settings,
    /// Delivery of outbound notifications (`[notify]`, `REVISIT_NOTIFY_*`).
    pub notify: crate::notify::Settings,
}

/// Settings of the outbound client (`[outbound]` in the file, `REVISIT_OUTBOUND_*` variables).
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Time to establish a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Whole call, connection to last byte of the answer, unless the entity's
    /// `RestApi.TimeoutMs` says otherwise.
    pub timeout: Duration,
    /// Largest answer read from a third party; a longer one is a 502.
    pub max_response_bytes: usize,
    /// Allow endpoints on loopback, private, link-local, CGNAT, multicast and unspecified
    /// addresses (on-premise installs, tests). Off by default: SSRF protection.
    pub allow_private_networks: bool,
    /// Consecutive failures of one (entity, endpoint) that open its circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before letting one probe through.
    pub breaker_cooldown: Duration,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            allow_private_networks: false,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid literal"),
            database_url: Secret::new("sqlite:./revisit.db"),
            database_max_connections: 16,
            database_statement_timeout: Duration::from_secs(5),
            jwt_secret: None,
            jwt_issuer: "revisit".into(),
            jwt_audience: "seiapi".into(),
            token_lifetime: Duration::from_secs(8 * 3600),
            body_limit: 1024 * 1024,
            shutdown_grace: Duration::from_secs(20),
            booking_queue_wait: Duration::from_secs(10),
            outbound: OutboundConfig::default(),
            max_connections: 1024,
            max_connections_per_client: 128,
            header_read_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(180),
            reoptimize: crate::reoptimize::Settings {
                after_booking: true,
                debounce: Duration::from_secs(2),
                max_delay: Duration::from_secs(10),
                iterations_after_booking: 3_000,
                nightly_at: Some(jiff::civil::time(2, 0, 0, 0)),
                nightly_days: 7,
                nightly_iterations: 20_000,
            },
            notify: crate::notify::Settings::default(),
        }
    }
}

/// The file form: every key optional, unknown keys rejected (a typo should not pass silently).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<Secret>,
    database_max_connections: Option<u32>,
    database_statement_timeout_ms: Option<u64>,
    jwt_secret: Option<Secret>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    token_lifetime_minutes: Option<u64>,
    body_limit_bytes: Option<usize>,
    shutdown_grace_ms: Option<u64>,
    booking_queue_wait_ms: Option<u64>,
    outbound: Option<FileOutbound>,
    reoptimize: Option<FileReoptimize>,
    notify: Option<FileNotify>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    header_read_timeout_ms: Option<u64>,
    body_read_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
}

/// `[outbound]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOutbound {
    connect_timeout_ms: Option<u64>,
    timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
    allow_private_networks: Option<bool>,
    breaker_failures: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
}

/// `[notify]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotify {
    deliver: Option<bool>,
    poll_ms: Option<u64>,
    lease_ms: Option<u64>,
    backoff_base_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    retry_hours: Option<u64>,
    concurrency: Option<usize>,
    retention_days: Option<u64>,
}

/// `[reoptimize]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReoptimize {
    after_booking: Option<bool>,
    debounce_ms: Option<u64>,
    max_delay_ms: Option<u64>,
    iterations_after_booking: Option<u64>,
    /// `HH:MM` local time of each work center, or `off`.
    nightly_at: Option<String>,
    nightly_days: Option<u32>,
    nightly_iterations: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// The storage settings.
    pub(crate) fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            max_connections: self.database_max_connections,
            statement_timeout: self.database_statement_timeout,
        }
    }

    /// Loads the configuration from the optional file and then the given environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut fc = FileConfig::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            fc = toml::from_str(&text)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        }
        for (key, value) in env {
            let Some(name) = key.strip_prefix("REVISIT_") else {
                continue;
            };
            let bad = |what: &str| ConfigError(format!("{key}: {what}, got {value:?}"));
            match name {
                "LISTEN" => fc.listen = Some(value.clone()),
                "DATABASE_URL" => fc.database_url = Some(Secret::new(value.clone())),
                "DATABASE_MAX_CONNECTIONS" => {
                    fc.database_max_connections =
                        Some(value.parse().map_err(|_| bad("expected a number"))?)
                }
                "DATABASE_STATEMENT_TIMEOUT_MS" => {
                    fc.database_statement_timeout_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "JWT_SECRET" => fc.jwt_secret = Some(Secret::new(value.clone())),
                "JWT_ISSUER" => fc.jwt_issuer = Some(value.clone()),
                "JWT_AUDIENCE" => fc.jwt_audience = Some(value.clone()),
                "TOKEN_LIFETIME_MINUTES" => {
                    fc.token_lifetime_minutes =
                        Some(value.parse().map_err(|_| bad("expected minutes"))?)
                }
                "BODY_LIMIT_BYTES" => {
                    fc.body_limit_bytes = Some(value.parse().map_err(|_| bad("expected bytes"))?)
                }
                "SHUTDOWN_GRACE_MS" => {
                    fc.shutdown_grace_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "BOOKING_QUEUE_WAIT_MS" => {
                    fc.booking_queue_wait_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "MAX_CONNECTIONS" => {
                    fc.max_connections = Some(value.parse().map_err(|_| bad("expected a number"))?)
                }
                "MAX_CONNECTIONS_PER_CLIENT" => {
                    fc.max_connections_per_client =
                        Some(value.parse().map_err(|_| bad("expected a number"))?)
                }
                "HEADER_READ_TIMEOUT_MS" => {
                    fc.header_read_timeout_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "BODY_READ_TIMEOUT_MS" => {
                    fc.body_read_timeout_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "IDLE_TIMEOUT_MS" => {
                    fc.idle_timeout_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "REOPTIMIZE_AFTER_BOOKING" => {
                    fc.reoptimize.get_or_insert_default().after_booking =
                        Some(parse_bool(&value).ok_or_else(|| bad("expected true or false"))?)
                }
                "REOPTIMIZE_DEBOUNCE_MS" => {
                    fc.reoptimize.get_or_insert_default().debounce_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "REOPTIMIZE_MAX_DELAY_MS" => {
                    fc.reoptimize.get_or_insert_default().max_delay_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "REOPTIMIZE_ITERATIONS_AFTER_BOOKING" => {
                    fc.reoptimize
                        .get_or_insert_default()
                        .iterations_after_booking =
                        Some(value.parse().map_err(|_| bad("expected a number"))?)
                }
                "REOPTIMIZE_NIGHTLY_AT" => {
                    fc.reoptimize.get_or_insert_default().nightly_at = Some(value.clone())
                }
                "REOPTIMIZE_NIGHTLY_DAYS" => {
                    fc.reoptimize.get_or_insert_default().nightly_days = Some(
                        value
                            .parse()
                            .map_err(|_| bad("expected a number of days"))?,
                    )
                }
                "REOPTIMIZE_NIGHTLY_ITERATIONS" => {
                    fc.reoptimize.get_or_insert_default().nightly_iterations =
                        Some(value.parse().map_err(|_| bad("expected a number"))?)
                }
                "NOTIFY_DELIVER" => {
                    fc.notify.get_or_insert_default().deliver =
                        Some(parse_bool(&value).ok_or_else(|| bad("expected true or false"))?)
                }
                "NOTIFY_POLL_MS" => {
                    fc.notify.get_or_insert_default().poll_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "NOTIFY_LEASE_MS" => {
                    fc.notify.get_or_insert_default().lease_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "NOTIFY_BACKOFF_BASE_MS" => {
                    fc.notify.get_or_insert_default().backoff_base_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "NOTIFY_BACKOFF_MAX_MS" => {
                    fc.notify.get_or_insert_default().backoff_max_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "NOTIFY_RETRY_HOURS" => {
                    fc.notify.get_or_insert_default().retry_hours =
                        Some(value.parse().map_err(|_| bad("expected hours"))?)
                }
                "NOTIFY_RETENTION_DAYS" => {
                    fc.notify.get_or_insert_default().retention_days =
                        Some(value.parse().map_err(|_| bad("expected days"))?)
                }
                "NOTIFY_CONCURRENCY" => {
                    fc.notify.get_or_insert_default().concurrency =
                        Some(value.parse().map_err(|_| bad("expected a number"))?)
                }
                "OUTBOUND_CONNECT_TIMEOUT_MS" => {
                    fc.outbound.get_or_insert_default().connect_timeout_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "OUTBOUND_TIMEOUT_MS" => {
                    fc.outbound.get_or_insert_default().timeout_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                "OUTBOUND_MAX_RESPONSE_BYTES" => {
                    fc.outbound.get_or_insert_default().max_response_bytes =
                        Some(value.parse().map_err(|_| bad("expected bytes"))?)
                }
                "OUTBOUND_ALLOW_PRIVATE_NETWORKS" => {
                    fc.outbound.get_or_insert_default().allow_private_networks =
                        Some(parse_bool(&value).ok_or_else(|| bad("expected true or false"))?)
                }
                "OUTBOUND_BREAKER_FAILURES" => {
                    fc.outbound.get_or_insert_default().breaker_failures =
                        Some(value.parse().map_err(|_| bad("expected a number"))?)
                }
                "OUTBOUND_BREAKER_COOLDOWN_MS" => {
                    fc.outbound.get_or_insert_default().breaker_cooldown_ms =
                        Some(value.parse().map_err(|_| bad("expected milliseconds"))?)
                }
                // Variables read elsewhere (tests, logging) are not configuration keys.
                "TEST_POSTGRES_URL" | "LOG" | "LOG_FORMAT" => {}
                _ => return Err(ConfigError(format!("unknown variable {key}"))),
            }
        }
        let mut c = Config::default();
        if let Some(l) = fc.listen {
            c.listen = l
                .parse()
                .map_err(|_| ConfigError(format!("listen: not an address:port: {l:?}")))?;
        }
        if let Some(u) = fc.database_url {
            c.database_url = u;
        }
        if let Some(n) = fc.database_max_connections {
            c.database_max_connections = n;
        }
        if let Some(ms) = fc.database_statement_timeout_ms {
            c.database_statement_timeout = Duration::from_millis(ms);
        }
        c.jwt_secret = fc.jwt_secret;
        if let Some(s) = fc.jwt_issuer {
            c.jwt_issuer = s;
        }
        if let Some(s) = fc.jwt_audience {
            c.jwt_audience = s;
        }
        if let Some(m) = fc.token_lifetime_minutes {
            c.token_lifetime = Duration::from_secs(m * 60);
        }
        if let Some(b) = fc.body_limit_bytes {
            c.body_limit = b;
        }
        if let Some(ms) = fc.shutdown_grace_ms {
            c.shutdown_grace = Duration::from_millis(ms);
        }
        if let Some(ms) = fc.booking_queue_wait_ms {
            c.booking_queue_wait = Duration::from_millis(ms);
        }
        if let Some(n) = fc.max_connections {
            c.max_connections = n;
        }
        if let Some(n) = fc.max_connections_per_client {
            c.max_connections_per_client = n;
        }
        if let Some(ms) = fc.header_read_timeout_ms {
            c.header_read_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = fc.body_read_timeout_ms {
            c.body_read_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = fc.idle_timeout_ms {
            c.idle_timeout = Duration::from_millis(ms);
        }
        if let Some(r) = fc.reoptimize {
            let re = &mut c.reoptimize;
            if let Some(b) = r.after_booking {
                re.after_booking = b;
            }
            if let Some(ms) = r.debounce_ms {
                re.debounce = Duration::from_millis(ms);
            }
            if let Some(ms) = r.max_delay_ms {
                re.max_delay = Duration::from_millis(ms);
            }
            if let Some(n) = r.iterations_after_booking {
                re.iterations_after_booking = n;
            }
            if let Some(at) = r.nightly_at {
                re.nightly_at = if at.eq_ignore_ascii_case("off") {
                    None
                } else {
                    Some(at.parse::<jiff::civil::Time>().map_err(|_| {
                        ConfigError(format!(
                            "reoptimize.nightly_at (REVISIT_REOPTIMIZE_NIGHTLY_AT): expected HH:MM or off, got {at:?}"
                        ))
                    })?)
                };
            }
            if let Some(d) = r.nightly_days {
                re.nightly_days = d.clamp(1, 28);
            }
            if let Some(n) = r.nightly_iterations {
                re.nightly_iterations = n;
            }
        }
        if let Some(n) = fc.notify {
            let no = &mut c.notify;
            if let Some(b) = n.deliver {
                no.deliver = b;
            }
            if let Some(ms) = n.poll_ms {
                no.poll = Duration::from_millis(ms.max(10));
            }
            if let Some(ms) = n.lease_ms {
                no.lease = Duration::from_millis(ms);
            }
            if let Some(ms) = n.backoff_base_ms {
                no.backoff_base = Duration::from_millis(ms.max(1));
            }
            if let Some(ms) = n.backoff_max_ms {
                no.backoff_max = Duration::from_millis(ms.max(1));
            }
            if let Some(h) = n.retry_hours {
                no.retry_window = Duration::from_secs(h * 3600);
            }
            if let Some(k) = n.concurrency {
                no.concurrency = k.clamp(1, 1024);
            }
            if let Some(d) = n.retention_days {
                no.retention = Duration::from_secs(d.max(1) * 24 * 3600);
            }
        }
        if let Some(o) = fc.outbound {
            let out = &mut c.outbound;
            if let Some(ms) = o.connect_timeout_ms {
                out.connect_timeout = Duration::from_millis(ms);
            }
            if let Some(ms) = o.timeout_ms {
                out.timeout = Duration::from_millis(ms);
            }
            if let Some(b) = o.max_response_bytes {
                out.max_response_bytes = b;
            }
            if let Some(b) = o.allow_private_networks {
                out.allow_private_networks = b;
            }
            if let Some(n) = o.breaker_failures {
                out.breaker_failures = n;
            }
            if let Some(ms) = o.breaker_cooldown_ms {
                out.breaker_cooldown = Duration::from_millis(ms);
            }
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError(
                "database_url must start with sqlite: or postgres://".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError("max_connections must be at least 1".into()));
        }
        for (name, t) in [
            ("header_read_timeout_ms", self.header_read_timeout),
            ("body_read_timeout_ms", self.body_read_timeout),
            ("idle_timeout_ms", self.idle_timeout),
        ] {
            if t < Duration::from_millis(100) {
                return Err(ConfigError(format!("{name} must be at least 100")));
            }
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError(
                "database_max_connections must be at least 1".into(),
            ));
        }
        if let Some(s) = &self.jwt_secret
            && s.expose().len() < 32
        {
            return Err(ConfigError(
                "jwt_secret must be at least 32 bytes (try: openssl rand -hex 32)".into(),
            ));
        }
        if self.token_lifetime.is_zero() {
            return Err(ConfigError(
                "token_lifetime_minutes must be at least 1".into(),
            ));
        }
        if self.body_limit < 1024 {
            return Err(ConfigError("body_limit_bytes must be at least 1024".into()));
        }
        let o = &self.outbound;
        if o.connect_timeout.is_zero() || o.timeout.is_zero() {
            return Err(ConfigError(
                "outbound connect_timeout_ms and timeout_ms must be at least 1".into(),
            ));
        }
        if o.max_response_bytes < 1024 {
            return Err(ConfigError(
                "outbound max_response_bytes must be at least 1024".into(),
            ));
        }
        if o.breaker_failures == 0 {
            return Err(ConfigError(
                "outbound breaker_failures must be at least 1".into(),
            ));
        }
        // A lease shorter than a delivery (token request, then the event) would let a second
        // process send an event still being sent.
        if self.notify.lease < o.timeout * 2 + Duration::from_secs(1) {
            return Err(ConfigError(
                "notify lease_ms must exceed twice outbound timeout_ms by a second at least".into(),
            ));
        }
        Ok(())
    }

    /// The secret is required outside demo mode; this says how to set one.
    pub(crate) fn require_jwt_secret(&self) -> Result<&Secret, ConfigError> {
        self.jwt_secret.as_ref().ok_or_else(|| {
            ConfigError(
                "no JWT secret: set REVISIT_JWT_SECRET (at least 32 bytes, e.g. `export REVISIT_JWT_SECRET=$(openssl rand -hex 32)`) \
                 or jwt_secret in the --config file; `serve --demo` generates one for local trials"
                    .into(),
            )
        })
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_defaults_and_secrets_are_redacted() {
        let c = Config::load(
            None,
            env(&[
                ("REVISIT_LISTEN", "0.0.0.0:9000"),
                ("REVISIT_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn unknown_variables_short_secrets_and_bad_urls_are_refused() {
        assert!(Config::load(None, env(&[("REVISIT_LISTN", "x")])).is_err());
        assert!(Config::load(None, env(&[("REVISIT_JWT_SECRET", "short")])).is_err());
        assert!(Config::load(None, env(&[("REVISIT_DATABASE_URL", "mysql://x")])).is_err());
    }

    #[test]
    fn outbound_settings_come_from_the_file_and_the_environment() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(!c.outbound.allow_private_networks);
        assert_eq!(c.outbound.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.outbound.timeout, Duration::from_secs(10));
        assert_eq!(c.outbound.max_response_bytes, 1024 * 1024);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revisit.toml");
        std::fs::write(
            &path,
            "[outbound]\nbreaker_failures = 3\nbreaker_cooldown_ms = 500\ntimeout_ms = 4000\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[("REVISIT_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")]),
        )
        .unwrap();
        assert!(c.outbound.allow_private_networks);
        assert_eq!(c.outbound.breaker_failures, 3);
        assert_eq!(c.outbound.breaker_cooldown, Duration::from_millis(500));
        assert_eq!(c.outbound.timeout, Duration::from_secs(4));
        assert!(
            Config::load(
                None,
                env(&[("REVISIT_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "maybe")])
            )
            .is_err()
        );
    }

    #[test]
    fn missing_secret_explains_how_to_set_one() {
        let c = Config::load(None, env(&[])).unwrap();
        let err = c.require_jwt_secret().unwrap_err().to_string();
        assert!(err.contains("REVISIT_JWT_SECRET"), "{err}");
    }
}
