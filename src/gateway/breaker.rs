//! A circuit breaker per (entity, endpoint `host[:port]`, interface): after `threshold`
//! consecutive failures the circuit opens and calls fail fast for `cooldown`; then one probe is
//! let through, whose result closes the circuit or opens it again. Keyed by entity too, so that
//! one company's broken scheduler never fails fast (or slows down) another company's calls to the
//! same host; and by interface, so that failing bookings do not stop searches, or the reverse.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// The state of one circuit, as exported to metrics (0 closed, 1 open, 2 half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub(crate) fn as_gauge(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

impl State {
    fn public(self) -> CircuitState {
        match self {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

/// How a call that was let through ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered sensibly (any relayed answer below 500).
    Success,
    /// Unreachable, timed out, 5xx, or an answer that is not the documented object.
    Failure,
    /// Says nothing about the endpoint (the call was refused before leaving, or abandoned).
    Neutral,
}

/// (entity, endpoint `host[:port]`, interface).
pub type Key = (String, String, &'static str);

/// Told of every change of a circuit's state.
type OnChange = Box<dyn Fn(&Key, CircuitState) + Send + Sync>;

/// Every circuit of the process.
pub(crate) struct Breakers {
    threshold: u32,
    cooldown: Duration,
    circuits: Mutex<HashMap<Key, State>>,
    /// Told of every change of state, for the metrics gauge.
    on_change: OnChange,
}

/// Refusal of an open circuit: retry after this long.
#[derive(Debug, Clone, Copy)]
pub struct Open {
    pub retry_after: Duration,
}

impl Breakers {
    pub fn new(
        threshold: u32,
        cooldown: Duration,
        on_change: impl Fn(&Key, CircuitState) + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            threshold: threshold.max(1),
            cooldown,
            circuits: Mutex::new(HashMap::new()),
            on_change: Box::new(on_change),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, State>> {
        // A panic while holding this lock cannot leave a state half-written (each update is one
        // assignment), so a poisoned lock is still usable.
        self.circuits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a call through (a permit that must be given its outcome) or refuses it.
    pub fn acquire(self: &Arc<Self>, key: Key) -> Result<Permit, Open> {
        let now = Instant::now();
        let mut map = self.lock();
        let state = map
            .entry(key.clone())
            .or_insert(State::Closed { failures: 0 });
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => {
                return Err(Open {
                    retry_after: until - now,
                });
            }
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                (self.on_change)(&key, CircuitState::HalfOpen);
                true
            }
            // One probe at a time; the others wait for its verdict.
            State::HalfOpen { probing: true } => {
                return Err(Open {
                    retry_after: Duration::from_secs(1),
                });
            }
        };
        Ok(Permit {
            breakers: self.clone(),
            key: Some(key),
            probe,
        })
    }

    fn record(&self, key: &Key, probe: bool, outcome: Outcome) {
        let mut map = self.lock();
        let Some(state) = map.get_mut(key) else {
            return;
        };
        let before = state.public();
        let open = State::Open {
            until: Instant::now() + self.cooldown,
        };
        *state = match (outcome, *state) {
            (Outcome::Success, _) => State::Closed { failures: 0 },
            (Outcome::Failure, _) if probe => open,
            (Outcome::Failure, State::Closed { failures }) => {
                if failures + 1 >= self.threshold {
                    open
                } else {
                    State::Closed {
                        failures: failures + 1,
                    }
                }
            }
            // A call let through before the circuit opened that fails too: stays open.
            (Outcome::Failure, s) => s,
            (Outcome::Neutral, State::HalfOpen { .. }) if probe => {
                State::HalfOpen { probing: false }
            }
            (Outcome::Neutral, s) => s,
        };
        let after = state.public();
        if after != before {
            if after == CircuitState::Open {
                tracing::warn!(entity = %key.0, host = %key.1, interface = key.2, cooldown_ms = self.cooldown.as_millis() as u64, "circuit opened");
            } else if after == CircuitState::Closed {
                tracing::info!(entity = %key.0, host = %key.1, interface = key.2, "circuit closed");
            }
            (self.on_change)(key, after);
        }
    }

    /// The state of a circuit (closed when never used).
    #[cfg(test)]
    pub fn state(&self, key: &Key) -> CircuitState {
        self.lock()
            .get(key)
            .map(|s| s.public())
            .unwrap_or(CircuitState::Closed)
    }
}

/// A call let through. Dropping it without [`Permit::finish`] (the caller went away) counts as
/// neutral, so a probe that was abandoned frees the way for the next one.
pub(crate) struct Permit {
    breakers: Arc<Breakers>,
    key: Option<Key>,
    probe: bool,
}

impl Permit {
    pub fn finish(mut self, outcome: Outcome) {
        if let Some(key) = self.key.take() {
            self.breakers.record(&key, self.probe, outcome);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.breakers.record(&key, self.probe, Outcome::Neutral);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(e: &str) -> Key {
        (e.to_string(), "crm.example.com".to_string(), "followup")
    }

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets_the_count() {
        let b = Breakers::new(3, Duration::from_secs(60), |_, _| {});
        for _ in 0..2 {
            b.acquire(key("a")).unwrap().finish(Outcome::Failure);
        }
        b.acquire(key("a")).unwrap().finish(Outcome::Success);
        for _ in 0..2 {
            b.acquire(key("a")).unwrap().finish(Outcome::Failure);
        }
        assert_eq!(b.state(&key("a")), CircuitState::Closed);
        b.acquire(key("a")).unwrap().finish(Outcome::Failure);
        assert_eq!(b.state(&key("a")), CircuitState::Open);
        let refused = b.acquire(key("a")).err().expect("open");
        assert!(refused.retry_after > Duration::from_secs(50));
        // Another entity's circuit to the same host is untouched, and so is the other interface.
        assert!(b.acquire(key("b")).is_ok());
        let search = ("a".to_string(), "crm.example.com".to_string(), "openslots");
        assert!(b.acquire(search).is_ok());
    }

    #[test]
    fn after_the_cooldown_one_probe_decides() {
        let b = Breakers::new(1, Duration::from_millis(20), |_, _| {});
        b.acquire(key("a")).unwrap().finish(Outcome::Failure);
        assert!(b.acquire(key("a")).is_err());
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.acquire(key("a")).expect("the probe");
        assert!(b.acquire(key("a")).is_err(), "one probe at a time");
        probe.finish(Outcome::Failure);
        assert_eq!(b.state(&key("a")), CircuitState::Open);
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.acquire(key("a")).expect("the next probe");
        drop(probe); // abandoned: the next caller may probe
        b.acquire(key("a"))
            .expect("a probe again")
            .finish(Outcome::Success);
        assert_eq!(b.state(&key("a")), CircuitState::Closed);
    }
}
