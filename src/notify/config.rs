//! The entity's `ExportNotifications` configuration: validation when it is written, redaction of
//! its secrets when it is read back (and keeping them when the redacted form is written again),
//! and the typed view the delivery worker reads.
//!
//! ```json
//! "ExportNotifications": {
//!   "Authentication": {"URL": "", "Headers": [{"Name": "", "Value": ""}],
//!     "Request": {"audience": "", "client_id": "", "client_secret": "", "grant_type": "client_credentials"},
//!     "Type": "OAuth2"},
//!   "Notifications": {"<Event>": {"Enabled": false, "URL": "", "Headers": [{"Name": "", "Value": ""}]}}
//! }
//! ```

use serde_json::{Map, Value};
use url::Url;

use crate::{
    domain::{InvalidParam, sysconfig::check_object},
    store::EventKind,
};

/// What a secret reads as ([Revisit]); written back unchanged, it keeps the stored value.
pub(crate) const REDACTED: &str = "********";

/// Headers Revisit sets itself, which the configuration may not set.
const RESERVED_HEADERS: [&str; 8] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// The OAuth2 client-credentials set-up.
#[derive(Debug, Clone)]
pub struct OAuth2 {
    pub url: Url,
    pub headers: Vec<(String, String)>,
    /// The token request's form fields (`grant_type`, `client_id`, `client_secret`, ...).
    pub request: Vec<(String, String)>,
}

/// Where one event goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    pub headers: Vec<(String, String)>,
}

fn section(cfg: &Map<String, Value>) -> Option<&Map<String, Value>> {
    cfg.get("ExportNotifications")?.as_object()
}

fn headers(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|h| {
                    Some((
                        h.get("Name")?.as_str()?.to_string(),
                        h.get("Value")?.as_str()?.to_string(),
                    ))
                })
                .filter(|(n, _)| !n.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn non_empty_url(v: Option<&Value>) -> Option<Url> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| Url::parse(s).ok())
}

/// The target of `kind`, when the configuration enables it with a URL.
pub fn target(cfg: &Map<String, Value>, kind: EventKind) -> Option<Target> {
    let n = section(cfg)?
        .get("Notifications")?
        .get(kind.as_str())?
        .as_object()?;
    if n.get("Enabled").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some(Target {
        url: non_empty_url(n.get("URL"))?,
        headers: headers(n.get("Headers")),
    })
}

/// The OAuth2 set-up, when `Authentication.Type` is `OAuth2`.
pub(crate) fn oauth2(cfg: &Map<String, Value>) -> Option<OAuth2> {
    let a = section(cfg)?.get("Authentication")?.as_object()?;
    if a.get("Type").and_then(Value::as_str) != Some("OAuth2") {
        return None;
    }
    let request = a
        .get("Request")
        .and_then(Value::as_object)
        .map(|r| {
            r.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .filter(|(_, v)| !v.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Some(OAuth2 {
        url: non_empty_url(a.get("URL"))?,
        headers: headers(a.get("Headers")),
        request,
    })
}

/// The http(s) endpoints the section sets, with their JSON paths (for the outbound policy's
/// check when the configuration is written).
pub fn endpoints(cfg: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(s) = section(cfg) else {
        return out;
    };
    if let Some(u) = s
        .get("Authentication")
        .and_then(|a| a.get("URL"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    {
        out.push((
            "$.ExportNotifications.Authentication.URL".into(),
            u.to_string(),
        ));
    }
    if let Some(n) = s.get("Notifications").and_then(Value::as_object) {
        for (event, v) in n {
            if let Some(u) = v
                .get("URL")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
            {
                out.push((
                    format!("$.ExportNotifications.Notifications.{event}.URL"),
                    u.to_string(),
                ));
            }
        }
    }
    out
}

fn check_url(path: &str, v: Option<&Value>, errs: &mut Vec<InvalidParam>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s.is_empty() => false,
        Some(Value::String(s)) => {
            let ok = Url::parse(s).ok().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
            });
            if !ok {
                let mut p = InvalidParam::new(path, "expected an absolute http(s) URI");
                p.value = s.chars().take(200).collect();
                errs.push(p);
            }
            ok
        }
        Some(_) => {
            errs.push(InvalidParam::new(path, "expected a string (URI)"));
            false
        }
    }
}

fn check_headers(path: &str, v: Option<&Value>, errs: &mut Vec<InvalidParam>) {
    let items = match v {
        None | Some(Value::Null) => return,
        Some(Value::Array(a)) => a,
        Some(_) => {
            errs.push(InvalidParam::new(
                path,
                "expected an array of {\"Name\", \"Value\"} objects",
            ));
            return;
        }
    };
    for (i, h) in items.iter().enumerate() {
        let here = format!("{path}[{i}]");
        let (Some(name), Some(value)) = (
            h.get("Name").and_then(Value::as_str),
            h.get("Value").and_then(Value::as_str),
        ) else {
            errs.push(InvalidParam::new(
                here,
                "expected an object with string Name and Value",
            ));
            continue;
        };
        // The platform's template ships an empty header: ignored.
        if name.is_empty() && value.is_empty() {
            continue;
        }
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            let mut p = InvalidParam::new(format!("{here}.Name"), "not a valid header name");
            p.value = name.chars().take(100).collect();
            errs.push(p);
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            let mut p = InvalidParam::new(
                format!("{here}.Name"),
                "this header is set by Revisit and cannot be configured",
            );
            p.value = name.to_string();
            errs.push(p);
        }
        if axum::http::HeaderValue::from_str(value).is_err() {
            errs.push(InvalidParam::new(
                format!("{here}.Value"),
                "not a valid header value (visible ASCII only)",
            ));
        }
    }
}

/// Validates `ExportNotifications` of a whole (merged) configuration.
pub(crate) fn validate(cfg: &Map<String, Value>, errs: &mut Vec<InvalidParam>) {
    let Some(s) = check_object(
        "$.ExportNotifications",
        cfg.get("ExportNotifications"),
        errs,
    ) else {
        return;
    };
    let base = "$.ExportNotifications";
    if let Some(a) = check_object(
        &format!("{base}.Authentication"),
        s.get("Authentication"),
        errs,
    ) {
        let p = format!("{base}.Authentication");
        let has_url = check_url(&format!("{p}.URL"), a.get("URL"), errs);
        check_headers(&format!("{p}.Headers"), a.get("Headers"), errs);
        if let Some(r) = check_object(&format!("{p}.Request"), a.get("Request"), errs) {
            for (k, v) in r {
                if !(v.is_string() || v.is_null()) {
                    errs.push(InvalidParam::new(
                        format!("{p}.Request.{k}"),
                        "expected a string",
                    ));
                }
            }
        }
        match a.get("Type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t.is_empty() || t == "None" => {}
            Some(Value::String(t)) if t == "OAuth2" => {
                if !has_url {
                    errs.push(InvalidParam::new(
                        format!("{p}.URL"),
                        "required with Type OAuth2: the token endpoint",
                    ));
                }
            }
            Some(_) => errs.push(InvalidParam::new(
                format!("{p}.Type"),
                "expected \"OAuth2\" or \"None\"",
            )),
        }
    }
    if let Some(n) = check_object(
        &format!("{base}.Notifications"),
        s.get("Notifications"),
        errs,
    ) {
        for (event, v) in n {
            let p = format!("{base}.Notifications.{event}");
            if EventKind::parse(event).is_none() {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                let mut e = InvalidParam::new(
                    &p,
                    format!("unknown event; Revisit sends {}", known.join(", ")),
                );
                e.value = event.chars().take(100).collect();
                errs.push(e);
                continue;
            }
            let Some(t) = check_object(&p, Some(v), errs) else {
                continue;
            };
            let enabled = match t.get("Enabled") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    errs.push(InvalidParam::new(
                        format!("{p}.Enabled"),
                        "expected a boolean",
                    ));
                    false
                }
            };
            let has_url = check_url(&format!("{p}.URL"), t.get("URL"), errs);
            if enabled
                && !has_url
                && !matches!(t.get("URL"), Some(Value::String(s)) if !s.is_empty())
            {
                errs.push(InvalidParam::new(
                    format!("{p}.URL"),
                    "required when the notification is enabled",
                ));
            }
            check_headers(&format!("{p}.Headers"), t.get("Headers"), errs);
        }
    }
}

/// Whether a property of `Authentication.Request` holds a secret.
fn is_secret_field(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k.contains("secret") || k.contains("password") || k == "assertion"
}

fn redact_headers(v: Option<&mut Value>) {
    if let Some(Value::Array(a)) = v {
        for h in a {
            if let Some(Value::String(s)) = h.get_mut("Value")
                && !s.is_empty()
            {
                *s = REDACTED.to_string();
            }
        }
    }
}

/// The configuration as it is shown: the client secret and every header value of
/// `ExportNotifications` replaced by [`REDACTED`].
pub fn redacted(mut cfg: Map<String, Value>) -> Map<String, Value> {
    let Some(Value::Object(s)) = cfg.get_mut("ExportNotifications") else {
        return cfg;
    };
    if let Some(Value::Object(a)) = s.get_mut("Authentication") {
        redact_headers(a.get_mut("Headers"));
        if let Some(Value::Object(r)) = a.get_mut("Request") {
            for (k, v) in r.iter_mut() {
                if is_secret_field(k)
                    && let Value::String(s) = v
                    && !s.is_empty()
                {
                    *s = REDACTED.to_string();
                }
            }
        }
    }
    if let Some(Value::Object(n)) = s.get_mut("Notifications") {
        for t in n.values_mut() {
            redact_headers(t.get_mut("Headers"));
        }
    }
    cfg
}

/// Headers of `patch` whose value is [`REDACTED`] take the stored value of the header of the
/// same name in `current`.
fn keep_headers(patch: Option<&mut Value>, current: Option<&Value>) {
    let Some(Value::Array(a)) = patch else {
        return;
    };
    let stored = headers(current);
    for h in a {
        let Some(name) = h.get("Name").and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        if let Some(Value::String(v)) = h.get_mut("Value")
            && v == REDACTED
            && let Some((_, old)) = stored.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            *v = old.clone();
        }
    }
}

/// Before a write is merged: a secret written back as [`REDACTED`] (as read) keeps its stored
/// value, so that a client may send back what it read.
pub(crate) fn keep_redacted(patch: &mut Map<String, Value>, current: &Map<String, Value>) {
    let Some(Value::Object(s)) = patch.get_mut("ExportNotifications") else {
        return;
    };
    let cur = current.get("ExportNotifications");
    if let Some(Value::Object(a)) = s.get_mut("Authentication") {
        let cur_a = cur.and_then(|c| c.get("Authentication"));
        keep_headers(a.get_mut("Headers"), cur_a.and_then(|c| c.get("Headers")));
        if let Some(Value::Object(r)) = a.get_mut("Request") {
            let cur_r = cur_a.and_then(|c| c.get("Request"));
            let redacted: Vec<String> = r
                .iter()
                .filter(|(_, v)| v.as_str() == Some(REDACTED))
                .map(|(k, _)| k.clone())
                .collect();
            for k in redacted {
                match cur_r.and_then(|c| c.get(&k)) {
                    Some(old) => {
                        r.insert(k, old.clone());
                    }
                    // Nothing stored to keep: absent from the patch, so it stays absent.
                    None => {
                        r.remove(&k);
                    }
                }
            }
        }
    }
    if let Some(Value::Object(n)) = s.get_mut("Notifications") {
        let cur_n = cur.and_then(|c| c.get("Notifications"));
        for (event, t) in n.iter_mut() {
            let cur_h = cur_n
                .and_then(|c| c.get(event))
                .and_then(|c| c.get("Headers"));
            keep_headers(t.get_mut("Headers"), cur_h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn secrets_read_back_redacted_and_written_back_redacted_are_kept() {
        let stored = obj(json!({"ExportNotifications": {
            "Authentication": {"Type": "OAuth2", "URL": "https://idp.example.com/token",
                "Headers": [{"Name": "X-Tenant", "Value": "t-1"}],
                "Request": {"client_id": "revisit", "client_secret": "s3cret", "grant_type": "client_credentials"}},
            "Notifications": {"FollowUpBooked": {"Enabled": true, "URL": "https://crm.example.com/hook",
                "Headers": [{"Name": "X-Api-Key", "Value": "k-123"}]}}}}));
        let shown = redacted(stored.clone());
        let text = Value::Object(shown.clone()).to_string();
        for secret in ["s3cret", "k-123", "t-1"] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
        assert!(text.contains("revisit"), "client_id is not a secret");
        let mut patch = shown;
        keep_redacted(&mut patch, &stored);
        assert_eq!(patch, stored);
    }

    #[test]
    fn unknown_events_reserved_headers_and_enabled_without_url_are_refused() {
        let mut errs = Vec::new();
        validate(
            &obj(json!({"ExportNotifications": {"Notifications": {
                "WorkorderCreated": {"Enabled": true, "URL": "https://x.example.com"},
                "WorkOrderChanged": {"Enabled": true, "URL": ""},
                "VisitMoved": {"Enabled": "yes", "URL": "ftp://x",
                    "Headers": [{"Name": "webhook-id", "Value": "x"}]}}}})),
            &mut errs,
        );
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "$.ExportNotifications.Notifications.WorkorderCreated",
            "$.ExportNotifications.Notifications.WorkOrderChanged.URL",
            "$.ExportNotifications.Notifications.VisitMoved.Enabled",
            "$.ExportNotifications.Notifications.VisitMoved.URL",
            "$.ExportNotifications.Notifications.VisitMoved.Headers[0].Name",
        ] {
            assert!(paths.contains(&p), "{p} not in {paths:?}");
        }
        let mut errs = Vec::new();
        validate(
            &obj(json!({"ExportNotifications": {
                "Authentication": {"URL": "", "Headers": [{"Name": "", "Value": ""}],
                    "Request": {"audience": "", "client_id": "", "client_secret": "", "grant_type": "client_credentials"},
                    "Type": ""},
                "Notifications": {"WorkOrderCreated": {"Enabled": false, "URL": "", "Headers": [{"Name": "", "Value": ""}]}}}})),
            &mut errs,
        );
        assert!(errs.is_empty(), "the platform's empty template: {errs:?}");
    }
}
