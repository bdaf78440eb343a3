//! `GET /scheduling/v1/board` ([Revisit]): one work center's day as the dispatcher's board draws
//! it, in one answer: the technicians of the work center with their shifts of the day, every
//! order they have planned that day (any status) with the travel before it, and the totals.
//!
//! Live boards poll it with `If-None-Match`: the `ETag` is the entity's set-up version and visit
//! sequence number (the scheduler cache's own change counters), read before anything else, so
//! an unchanged day costs one small query and a `304`.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use revisit_scheduler::{GeoPoint, GreatCircle, Technician, Travel, shifts_on};
use serde_json::{Value, json};

use super::extract::unknown_param;
use crate::{
    app::AppState,
    auth::Caller,
    domain::{InvalidParam, Role, time},
    error::ApiError,
    schedule::builtin::{technicians_of, to_visit},
    store::BoardOrder,
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/scheduling/v1/board", get(board))
}

struct Params {
    area: String,
    date: Option<Date>,
}

fn parse(q: &HashMap<String, String>) -> Result<Params, ApiError> {
    let mut errs = Vec::new();
    let mut area = None;
    let mut date = None;
    for (k, v) in q {
        match k.as_str() {
            "ServiceAreaID" if !v.is_empty() && v.len() <= 64 => area = Some(v.clone()),
            "ServiceAreaID" => errs.push(InvalidParam::new(
                "ServiceAreaID",
                "expected a work center id of 1 to 64 characters",
            )),
            "Date" => match v.parse::<Date>() {
                Ok(d) if v.len() == 10 => date = Some(d),
                _ => errs.push(InvalidParam::new(
                    "Date",
                    "expected a date such as 2026-12-01",
                )),
            },
            other => errs.push(unknown_param(other)),
        }
    }
    if area.is_none() && !q.contains_key("ServiceAreaID") {
        errs.push(InvalidParam::new(
            "ServiceAreaID",
            "required: the work center",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid_query("invalid query parameters", errs));
    }
    Ok(Params {
        area: area.unwrap_or_default(),
        date,
    })
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn minutes(ms: i64) -> i64 {
    ms / 60_000
}

fn ratio(part: i64, whole: i64) -> Value {
    if whole > 0 {
        json!(((part as f64 / whole as f64) * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

/// One work center's day: its technicians' shifts, visits and travel, and the totals
/// ([Revisit]). Admins and dispatchers.
#[utoipa::path(get, path = "/scheduling/v1/board", tag = "scheduler set-up",
    params(("ServiceAreaID" = String, Query, description = "the work center"),
           ("Date" = Option<String>, Query, description = "the local date, YYYY-MM-DD (default: today in the work center's zone)")),
    responses((status = 200, description = "The board of the day", body = Object), (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])))]
pub async fn board(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher], "read the board")?;
    let p = parse(&q)?;
    // The scheduler's own view of the set-up, its versions read first: whatever is read after
    // it is at least as new, so a client never keeps an older day under a newer tag.
    let view = state.followups.builtin().view(&caller.entity).await?;
    let (setup, seq) = view.versions;
    let wc = view
        .setup
        .work_centers
        .iter()
        .find(|w| w.service_area_id == p.area)
        .ok_or_else(|| ApiError::not_found(format!("no work center {:?}", p.area)))?;
    let tz = TimeZone::get(&wc.time_zone).map_err(|e| {
        ApiError::internal(format!(
            "work center {}: time zone {}: {e}",
            wc.service_area_id, wc.time_zone
        ))
    })?;
    let date = p
        .date
        .unwrap_or_else(|| Timestamp::now().to_zoned(tz.clone()).date());
    let store = &state.store;
    // Refusals change no schedule version: their count is part of the tag.
    let refused = store
        .refusals(&caller.entity, &wc.service_area_id, &date.to_string())
        .await?;
    // The tag names the day too: the default date changes at midnight with no write.
    let etag = format!("\"board-{setup}-{seq}-{refused}-{date}\"");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    // Local midnights (the earlier instant when the clock repeats, the later when it skips).
    let midnight = |d: Date| d.to_zoned(tz.clone()).ok().map(|z| ms(z.timestamp()));
    let day_start = midnight(date).unwrap_or_default();
    let day_end = date
        .tomorrow()
        .ok()
        .and_then(midnight)
        .unwrap_or(day_start + 86_400_000);

    let mut techs: Vec<&Technician> = technicians_of(&view.setup, Some(wc)).collect();
    techs.sort_by(|a, b| a.user_name.cmp(&b.user_name));
    let names: Vec<String> = techs.iter().map(|t| t.user_name.clone()).collect();
    let orders = store
        .board_orders(&caller.entity, &names, day_start, day_end)
        .await?;
    let booked = store
        .followups_booked(&caller.entity, &p.area, day_start, day_end)
        .await?;
    let mut by_tech: HashMap<&str, Vec<&BoardOrder>> = HashMap::new();
    for o in &orders {
        by_tech
            .entry(o.visit.user_name.as_str())
            .or_default()
            .push(o);
    }
    let snapshot = view.snapshot();

    let travel = GreatCircle::from_policy(&wc.policy);
    let (mut all_work, mut all_travel, mut all_shift, mut all_visits, mut all_follow) =
        (0, 0, 0, 0, 0);
    let mut rows = Vec::new();
    for t in &techs {
        // As the scheduler reads them (in the zone of the technician's first work center).
        let shifts: Vec<(i64, i64)> = shifts_on(&snapshot, t, &tz, date)
            .into_iter()
            .map(|(a, b)| (ms(a), ms(b)))
            .collect();
        let visits = by_tech.remove(t.user_name.as_str()).unwrap_or_default();
        if !t.active && visits.is_empty() {
            continue;
        }
        let mut here = t.home;
        let (mut work, mut driven, mut followups, mut stop) = (0, 0, 0, 0);
        let mut out = Vec::new();
        for o in &visits {
            // Where the scheduler has the visit end.
            let end = ms(to_visit(&view.setup, o.visit.clone()).1.end);
            let (start, v) = (o.visit.start_ms, &o.visit);
            let rejected =
                o.order_status == Some(crate::domain::status::OrderStatus::Rejected.code());
            let place = v.lat.zip(v.lon).map(|(lat, lon)| GeoPoint { lat, lon });
            let leg = match (rejected, place) {
                (false, Some(p)) => {
                    let m = i64::from(travel.minutes(here, p));
                    here = p;
                    driven += m;
                    Some(m)
                }
                _ => None,
            };
            if !rejected {
                work += minutes(end - start);
                stop += 1;
            }
            if o.original_order_num.is_some() {
                followups += 1;
            }
            let b = &o.body.0;
            let address = [
                text(b, &["Location", "Address", "AddrLine1"]),
                text(b, &["Location", "Address", "City"]),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
            out.push(json!({
                "OrderNum": v.order_num,
                "Stop": if rejected { Value::Null } else { json!(stop) },
                "OrderType": b.get("OrderType"),
                "OrderStatus": o.order_status,
                "ServiceAreaID": o.service_area_id,
                "Start": time::format_millis(start),
                "End": time::format_millis(end),
                "Window": match (v.window_start_ms, v.window_end_ms) {
                    (Some(s), Some(e)) => json!({"Start": time::format_millis(s), "End": time::format_millis(e)}),
                    _ => Value::Null,
                },
                "Lat": v.lat, "Lon": v.lon,
                "TravelMinutes": leg,
                "Customer": text(b, &["Account", "Name"]).or(text(b, &["Location", "Name"])),
                "Address": address,
                "Description": text(b, &["Description"]),
                "OriginalOrderNum": o.original_order_num,
            }));
        }
        let home_leg = (stop > 0).then(|| i64::from(travel.minutes(here, t.home)));
        driven += home_leg.unwrap_or(0);
        let shift_min: i64 = shifts.iter().map(|(a, b)| minutes(b - a)).sum();
        all_work += work;
        all_travel += driven;
        all_shift += shift_min;
        all_visits += stop;
        all_follow += followups;
        rows.push(json!({
            "UserName": t.user_name,
            "Name": t.name,
            "Active": t.active,
            "Home": {"Lat": t.home.lat, "Lon": t.home.lon},
            "Skills": t.skills,
            "Shifts": shifts.iter().map(|(a, b)| json!({"Start": time::format_millis(*a), "End": time::format_millis(*b)})).collect::<Vec<_>>(),
            "Visits": out,
            "TravelHomeMinutes": home_leg,
            "Totals": {
                "Visits": stop, "WorkMinutes": work, "TravelMinutes": driven, "ShiftMinutes": shift_min,
                "Utilisation": ratio(work + driven, shift_min), "Followups": followups,
            },
        }));
    }
    let body = json!({
        "ServiceAreaID": wc.service_area_id,
        "Name": wc.name,
        "TimeZone": wc.time_zone,
        "Lat": wc.lat, "Lon": wc.lon,
        "Date": date.to_string(),
        "Day": {"Start": time::format_millis(day_start), "End": time::format_millis(day_end)},
        "Version": etag.trim_matches('"'),
        "Technicians": rows,
        "Totals": {
            "Technicians": rows.len(), "Visits": all_visits, "WorkMinutes": all_work,
            "TravelMinutes": all_travel, "ShiftMinutes": all_shift,
            "Utilisation": ratio(all_work + all_travel, all_shift),
            "FollowupVisits": all_follow, "FollowupsBooked": booked, "RefusedFullyBooked": refused,
        },
    });
    Ok((StatusCode::OK, h, Json(body)).into_response())
}
