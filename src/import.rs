//! `revisit import`: loads the built-in scheduler's set-up from a JSON or CSV file, because a
//! dispatcher starts from the roster they already keep in a spreadsheet. Everything is checked
//! before anything is written: one bad row and nothing is imported.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::{
    api::scheduling::check_object,
    domain::EntityId,
    store::{SchedKind, Store},
};

/// One object to store, with where it came from for error messages.
struct Item {
    kind: SchedKind,
    id: String,
    body: Map<String, Value>,
    origin: String,
}

fn kind_named(s: &str) -> anyhow::Result<SchedKind> {
    SchedKind::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
        anyhow::anyhow!("unknown kind {s:?}: workcenters, technicians or ordertypes")
    })
}

fn id_of(kind: SchedKind, body: &Map<String, Value>) -> Option<String> {
    body.get(crate::api::scheduling::id_property(kind))?
        .as_str()
        .map(str::to_string)
}

/// The items of a JSON file, and the errors of the items that could not be read.
fn from_json(text: &str, kind: Option<SchedKind>) -> anyhow::Result<(Vec<Item>, Vec<String>)> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("not valid JSON: {e}"))?;
    let mut groups: Vec<(SchedKind, Vec<Value>)> = Vec::new();
    match (value, kind) {
        (Value::Array(items), Some(k)) => groups.push((k, items)),
        (Value::Object(m), _) => {
            for (key, k) in [
                ("WorkCenters", SchedKind::WorkCenters),
                ("Technicians", SchedKind::Technicians),
                ("OrderTypes", SchedKind::OrderTypes),
            ] {
                if let Some(Value::Array(items)) = m.get(key) {
                    groups.push((k, items.clone()));
                }
            }
            if groups.is_empty() {
                anyhow::bail!(
                    "expected an object with WorkCenters, Technicians and/or OrderTypes arrays"
                );
            }
        }
        (Value::Array(_), None) => anyhow::bail!("a JSON array needs --kind"),
        _ => anyhow::bail!("expected a JSON object or array"),
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (k, items) in groups {
        for (i, v) in items.into_iter().enumerate() {
            let origin = format!("{}[{i}]", k.as_str());
            let Value::Object(body) = v else {
                errors.push(format!("{origin}: expected an object"));
                continue;
            };
            let Some(id) = id_of(k, &body) else {
                errors.push(format!(
                    "{origin}: missing {}",
                    crate::api::scheduling::id_property(k)
                ));
                continue;
            };
            out.push(Item {
                kind: k,
                id,
                body,
                origin,
            });
        }
    }
    Ok((out, errors))
}

fn list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// `HVAC:2;GEN` (level 1 when omitted).
fn skills(s: &str) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for item in list(s) {
        let (code, level) = match item.split_once(':') {
            Some((c, l)) => (
                c.trim().to_string(),
                l.trim()
                    .parse::<u8>()
                    .map_err(|_| anyhow::anyhow!("bad skill level in {item:?}"))?,
            ),
            None => (item, 1),
        };
        out.push(json!({"Code": code, "Level": level}));
    }
    Ok(Value::Array(out))
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `Mon-Fri 08:00-17:00; Sat 09:00-13:00`.
fn shifts(s: &str) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for item in list(s) {
        let (days, hours) = item
            .split_once(' ')
            .ok_or_else(|| anyhow::anyhow!("shift {item:?}: expected `Mon-Fri 08:00-17:00`"))?;
        let (start, end) = hours
            .trim()
            .split_once('-')
            .ok_or_else(|| anyhow::anyhow!("shift {item:?}: expected hours like 08:00-17:00"))?;
        let mut ds = Vec::new();
        for part in days.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let ia = DAYS
                        .iter()
                        .position(|d| *d == a)
                        .ok_or_else(|| anyhow::anyhow!("unknown day {a:?}"))?;
                    let ib = DAYS
                        .iter()
                        .position(|d| *d == b)
                        .ok_or_else(|| anyhow::anyhow!("unknown day {b:?}"))?;
                    ds.extend(DAYS[ia..=ib.max(ia)].iter().map(|d| d.to_string()));
                }
                None => ds.push(part.to_string()),
            }
        }
        out.push(json!({"Days": ds, "Start": start.trim(), "End": end.trim()}));
    }
    Ok(Value::Array(out))
}

fn number(s: &str, what: &str) -> anyhow::Result<Value> {
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{what}: not a number: {s:?}"))?;
    Ok(json!(n))
}

/// The columns each kind of CSV file must have.
fn required_columns(kind: SchedKind) -> &'static [&'static str] {
    match kind {
        SchedKind::WorkCenters => &["ServiceAreaID", "Name", "TimeZone", "Lat", "Lon"],
        SchedKind::Technicians => &[
            "UserName",
            "Name",
            "ServiceAreaIDs",
            "Skills",
            "HomeLat",
            "HomeLon",
            "Shifts",
        ],
        SchedKind::OrderTypes => &["OrderType", "Desc", "DurationMinutes"],
    }
}

/// The rows of a CSV file of `kind`, and the errors of the rows that could not be read (every
/// one of them, not only the first).
fn from_csv(text: &str, kind: SchedKind) -> anyhow::Result<(Vec<Item>, Vec<String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let missing: Vec<&str> = required_columns(kind)
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .collect();
    if !missing.is_empty() {
        // Most likely the file is of another kind: say which, instead of "line 2: missing ...".
        let guess = [
            SchedKind::WorkCenters,
            SchedKind::Technicians,
            SchedKind::OrderTypes,
        ]
        .into_iter()
        .find(|k| {
            required_columns(*k)
                .iter()
                .all(|c| headers.iter().any(|h| h == *c))
        });
        let hint = match guess {
            Some(k) => format!("; its columns are those of --kind {}", k.as_str()),
            None => String::new(),
        };
        anyhow::bail!(
            "not a {} file: it lacks the column(s) {} (a {} file has {}){hint}",
            kind.as_str(),
            missing.join(", "),
            kind.as_str(),
            required_columns(kind).join(", ")
        );
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let origin = format!("line {}", i + 2);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("{origin}: {e}"));
                continue;
            }
        };
        let col = |name: &str| -> anyhow::Result<&str> {
            let idx = headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| anyhow::anyhow!("missing column {name}"))?;
            Ok(rec.get(idx).unwrap_or(""))
        };
        let opt = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| rec.get(i))
                .filter(|s| !s.is_empty())
        };
        let body = (|| -> anyhow::Result<Value> {
            Ok(match kind {
                SchedKind::WorkCenters => json!({
                    "ServiceAreaID": col("ServiceAreaID")?, "Name": col("Name")?, "TimeZone": col("TimeZone")?,
                    "Lat": number(col("Lat")?, "Lat")?, "Lon": number(col("Lon")?, "Lon")?,
                }),
                SchedKind::Technicians => json!({
                    "UserName": col("UserName")?, "Name": col("Name")?,
                    "ServiceAreaIDs": list(col("ServiceAreaIDs")?),
                    "Skills": skills(col("Skills")?)?,
                    "Home": {"Lat": number(col("HomeLat")?, "HomeLat")?, "Lon": number(col("HomeLon")?, "HomeLon")?},
                    "Shifts": shifts(col("Shifts")?)?,
                    "Active": !matches!(opt("Active").map(str::to_ascii_lowercase).as_deref(), Some("false" | "no" | "0")),
                }),
                SchedKind::OrderTypes => json!({
                    "OrderType": col("OrderType")?, "Desc": col("Desc")?,
                    "DurationMinutes": col("DurationMinutes")?.parse::<u32>().map_err(|_| anyhow::anyhow!("DurationMinutes: not a whole number"))?,
                    "Skills": skills(opt("Skills").unwrap_or(""))?,
                }),
            })
        })();
        let body = match body {
            Ok(Value::Object(b)) => b,
            Ok(_) => unreachable!("json! object"),
            Err(e) => {
                errors.push(format!("{origin}: {e}"));
                continue;
            }
        };
        let id = id_of(kind, &body).unwrap_or_default();
        out.push(Item {
            kind,
            id,
            body,
            origin,
        });
    }
    Ok((out, errors))
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Imported {
    pub written: usize,
    /// Technicians of the entity (after the import) with no technician login.
    pub without_login: Vec<String>,
}

/// Imports the file into `entity`: every row is checked (its own content, and the work centers
/// a technician names, in the file or stored already) and every error listed before anything
/// is written; then all of it is written in one transaction, or none.
pub async fn import(
    store: &Store,
    entity: &EntityId,
    path: &Path,
    kind: Option<&str>,
) -> anyhow::Result<Imported> {
    let file = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?;
    let kind = kind.map(kind_named).transpose()?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let (items, mut errors) = if is_csv {
        from_csv(
            &text,
            kind.ok_or_else(|| {
                anyhow::anyhow!(
                    "{file}: a CSV file needs --kind workcenters|technicians|ordertypes"
                )
            })?,
        )
    } else {
        from_json(&text, kind)
    }
    .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let mut work_centers: std::collections::BTreeSet<String> = store
        .list_sched(entity, SchedKind::WorkCenters)
        .await?
        .iter()
        .filter_map(|w| w["ServiceAreaID"].as_str().map(str::to_string))
        .collect();
    work_centers.extend(
        items
            .iter()
            .filter(|i| i.kind == SchedKind::WorkCenters)
            .map(|i| i.id.clone()),
    );
    let mut checked = Vec::new();
    for it in items {
        match check_object(it.kind, &it.id, it.body) {
            Ok(v) => {
                if it.kind == SchedKind::Technicians {
                    for area in v["ServiceAreaIDs"].as_array().into_iter().flatten() {
                        let area = area.as_str().unwrap_or_default();
                        if !work_centers.contains(area) {
                            errors.push(format!(
                                "{}: technician {} names the work center {area:?}, which neither \
                                 the file nor the entity has",
                                it.origin, it.id
                            ));
                        }
                    }
                }
                checked.push((it.kind, it.id, v))
            }
            Err(e) => errors.push(format!("{}: {}", it.origin, e.detail)),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!(
            "{file}: nothing imported; fix these first:\n  {}",
            errors.join("\n  ")
        );
    }
    store.import_setup(entity, &checked, &[]).await?;
    let users = store.list_users(entity).await?;
    let profiles = store
        .list_sched(entity, SchedKind::Technicians)
        .await?
        .iter()
        .filter_map(|t| t["UserName"].as_str().map(str::to_string))
        .collect();
    let report = crate::api::admin::report(&users, &profiles);
    Ok(Imported {
        written: checked.len(),
        without_login: report.without_login,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_technician_roster_row_becomes_the_scheduler_shape() {
        let csv = "UserName,Name,ServiceAreaIDs,Skills,HomeLat,HomeLon,Shifts,Active\n\
                   tech01,Ann Lee,CHI-N;CHI-C,HVAC:2;GEN,41.95,-87.65,Mon-Fri 08:00-17:00; Sat 09:00-13:00,yes\n";
        let (items, errors) = from_csv(csv, SchedKind::Technicians).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let v = check_object(SchedKind::Technicians, &items[0].id, items[0].body.clone()).unwrap();
        assert_eq!(v["ServiceAreaIDs"], json!(["CHI-N", "CHI-C"]));
        assert_eq!(
            v["Skills"],
            json!([{"Code": "HVAC", "Level": 2}, {"Code": "GEN", "Level": 1}])
        );
        assert_eq!(
            v["Shifts"][0]["Days"],
            json!(["Mon", "Tue", "Wed", "Thu", "Fri"])
        );
        assert_eq!(
            v["Shifts"][1],
            json!({"Days": ["Sat"], "Start": "09:00", "End": "13:00"})
        );
    }

    #[test]
    fn a_bad_row_is_reported_with_its_line() {
        let csv = "ServiceAreaID,Name,TimeZone,Lat,Lon\nN,North,Mars/Base,41.9,-87.6\n";
        let (items, _) = from_csv(csv, SchedKind::WorkCenters).unwrap();
        assert!(check_object(SchedKind::WorkCenters, &items[0].id, items[0].body.clone()).is_err());
    }
}
