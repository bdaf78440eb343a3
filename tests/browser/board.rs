//! The dispatcher's board in real Chromium on a 1280-pixel screen, against the real server: the
//! demo's day is drawn where the API says, the map has one route per technician with the right
//! stops, a booking made over the API appears without a reload, the admin's settings refuse a
//! bad `RestApi.BookJob` in place, a technician is refused, and the render time at 40 and 500
//! technicians is measured (`BENCHMARKS.md`).

use std::{sync::Arc, time::Instant};

use jiff::{Timestamp, ToSpan, civil::Weekday, tz::TimeZone};
use revisit::{
    demo::{self, Size},
    domain::{EntityId, Role},
};
use serde_json::{Value, json};

use crate::harness::{Browser, with_browser_at};
use crate::helpers::{
    AREA, Backend, TestApp, book_body, closed_order, fleet, location, spawn_app_with,
    technician_body, window,
};

const DESKTOP: (u32, u32, f64) = (1280, 900, 1.0);
const TABLET: (u32, u32, f64) = (820, 1180, 1.0);

/// The demo's generated company, cut to work center CHI-N with `technicians` of its own and
/// their visits of one Wednesday (about five each). Returns the date.
async fn demo_day(app: &TestApp, technicians: usize) -> String {
    let tz = TimeZone::get(demo::TIME_ZONE).unwrap();
    let mut date = Timestamp::now()
        .to_zoned(tz)
        .date()
        .checked_add(1.day())
        .unwrap();
    while date.weekday() != Weekday::Wednesday {
        date = date.tomorrow().unwrap();
    }
    // Every third generated technician lives in CHI-N.
    let mut g = demo::generate(
        Size {
            technicians: technicians * 3,
            days: 1,
            visits_per_day: 5,
            seed: 7,
            planned_routes: true,
        },
        date,
    );
    g.technicians.retain(|t| t.service_area_ids[0] == "CHI-N");
    for t in &mut g.technicians {
        t.service_area_ids.truncate(1);
    }
    let keep: std::collections::HashSet<String> =
        g.technicians.iter().map(|t| t.user_name.clone()).collect();
    g.orders
        .retain(|o| o.user_name().is_some_and(|u| keep.contains(u)));
    assert_eq!(g.technicians.len(), technicians);
    let entity = EntityId::parse(demo::ENTITY).unwrap();
    app.state.store.ensure_entity(&entity).await.unwrap();
    demo::store_generated(&app.state.store, &entity, &g)
        .await
        .unwrap();
    date.to_string()
}

async fn log_in(b: &Browser, base: &str, hash: &str, user: &str, password: &str) {
    b.goto(&format!("{base}/board/{hash}")).await;
    b.type_into("#username", user).await;
    b.type_into("#password", password).await;
    b.click("form button[type=submit]").await;
}

/// Waits for the board of `version` (any when `None`) to be drawn, and returns its timing.
async fn drawn(b: &Browser) -> Value {
    b.until(
        "the board to be drawn",
        "return !!window.revisitBoardTiming && !!document.querySelector('.timeline')",
    )
    .await;
    b.js("return window.revisitBoardTiming").await
}

async fn api_board(app: &TestApp, token: &str, area: &str, date: &str) -> Value {
    app.request(
        reqwest::Method::GET,
        &format!("/scheduling/v1/board?ServiceAreaID={area}&Date={date}"),
        Some(token),
        None,
    )
    .await
    .expect(200)
    .body
}

/// Every visit of the API's board as drawn: technician row, and the block's left and right
/// edges against where its planned start and end fall on the drawn axis (in pixels).
const DRAWN_VISITS: &str = r#"
    const tl = document.querySelector('.timeline');
    const from = Number(tl.dataset.from), to = Number(tl.dataset.to);
    return [...document.querySelectorAll('.visit')].map(e => {
      const track = e.parentElement.getBoundingClientRect();
      const r = e.getBoundingClientRect();
      const x = ms => track.left + (ms - from) / (to - from) * track.width;
      return {order: e.dataset.order, tech: e.closest('[data-row]').dataset.row,
              start: e.dataset.start, end: e.dataset.end,
              dl: r.left - x(Date.parse(e.dataset.start)), dr: r.right - x(Date.parse(e.dataset.end))};
    });"#;

#[tokio::test]
async fn the_demo_board_draws_every_visit_of_the_day_where_the_api_says_and_opens_its_panel() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let date = demo_day(&app, 40).await;
    let disp = app.user("demo", "dina", Role::Dispatcher).await;
    let want = api_board(&app, &disp.token, "CHI-N", &date).await;
    let app = Arc::new(app);
    with_browser_at("board_day", DESKTOP, |b| {
        let (app, want, date) = (app.clone(), want.clone(), date.clone());
        async move {
            log_in(
                &b,
                &app.address,
                &format!("#/day/CHI-N/{date}"),
                "dina",
                "dina-pw",
            )
            .await;
            let timing = drawn(&b).await;
            eprintln!("board, 40 technicians: {timing}");
            // Under 500 ms on this machine (BENCHMARKS.md); a busy CI machine gets room, enough
            // to catch a board that grew slow.
            assert!(timing["renderMs"].as_f64().unwrap() < 1000.0, "{timing}");
            let got = b.js(DRAWN_VISITS).await;
            let got = got.as_array().unwrap();
            let mut expected = Vec::new();
            for t in want["Technicians"].as_array().unwrap() {
                for v in t["Visits"].as_array().unwrap() {
                    expected.push((
                        v["OrderNum"].clone(),
                        t["UserName"].clone(),
                        v["Start"].clone(),
                        v["End"].clone(),
                    ));
                }
            }
            assert!(
                expected.len() >= 150,
                "a full day: {} visits",
                expected.len()
            );
            assert_eq!(got.len(), expected.len(), "one block per visit");
            for (num, tech, start, end) in &expected {
                let g = got
                    .iter()
                    .find(|g| g["order"] == *num)
                    .unwrap_or_else(|| panic!("{num} is not on the board"));
                assert_eq!(g["tech"], *tech, "{num} in the wrong row");
                assert_eq!((&g["start"], &g["end"]), (start, end), "{num}");
                for edge in ["dl", "dr"] {
                    let d = g[edge].as_f64().unwrap();
                    assert!(d.abs() <= 1.0, "{num}: {edge} is {d} px off");
                }
            }
            // Totals as the API counts them.
            b.until_text("#day-totals", &format!("{}", want["Totals"]["Visits"]))
                .await;
            b.shot_doc("board", Some("board-day")).await;
            b.check_accessibility("the day board").await;

            // The keyboard reaches a visit; Enter opens its panel with the order.
            let first = want["Technicians"][0]["Visits"][0]["OrderNum"]
                .as_str()
                .unwrap()
                .to_string();
            b.tab_to(&format!("[data-order=\"{first}\"]")).await;
            b.keys(fantoccini::key::Key::Enter.to_string()).await;
            b.until_text("#panel-title", &first).await;
            b.until_text("#panel", "History").await;
            b.until(
                "the stop to be highlighted on the map",
                &format!(
                    "return !!document.querySelector('.stop.is-selected[data-stop=\"{first}\"]')"
                ),
            )
            .await;
            b.shot_doc("panel", Some("board-panel")).await;
            // Arrow keys move along the day: the second visit, then its panel.
            let second = want["Technicians"][0]["Visits"][1]["OrderNum"]
                .as_str()
                .unwrap()
                .to_string();
            b.tab_to(&format!("[data-order=\"{first}\"]")).await;
            b.keys(fantoccini::key::Key::Right.to_string()).await;
            b.keys(fantoccini::key::Key::Enter.to_string()).await;
            b.until_text("#panel-title", &second).await;
            b.check_accessibility("the board with a visit open").await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_map_draws_one_route_per_technician_with_each_of_its_stops_in_order() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let date = demo_day(&app, 12).await;
    let disp = app.user("demo", "dina", Role::Dispatcher).await;
    let want = api_board(&app, &disp.token, "CHI-N", &date).await;
    let app = Arc::new(app);
    with_browser_at("board_map", DESKTOP, |b| {
        let (app, want, date) = (app.clone(), want.clone(), date.clone());
        async move {
            log_in(&b, &app.address, &format!("#/day/CHI-N/{date}"), "dina", "dina-pw").await;
            drawn(&b).await;
            let routes = b
                .js(r#"return [...document.querySelectorAll('.route')].map(g => ({tech: g.dataset.route,
                        points: g.querySelector('polyline').getAttribute('points').split(' ').length,
                        stops: [...document.querySelectorAll(`.stop[data-tech="${g.dataset.route}"]`)].map(s => Number(s.dataset.n))}))"#)
                .await;
            let routes = routes.as_array().unwrap();
            let with_visits: Vec<&Value> = want["Technicians"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| !t["Visits"].as_array().unwrap().is_empty())
                .collect();
            assert_eq!(routes.len(), with_visits.len(), "one route per technician with visits");
            for t in with_visits {
                let r = routes
                    .iter()
                    .find(|r| r["tech"] == t["UserName"])
                    .unwrap_or_else(|| panic!("no route of {}", t["UserName"]));
                let n = t["Visits"].as_array().unwrap().len();
                let numbers: Vec<u64> = (1..=n as u64).collect();
                assert_eq!(r["stops"], json!(numbers), "{}", t["UserName"]);
                // Home, every stop, home again.
                assert_eq!(r["points"], n + 2, "{}", t["UserName"]);
            }
            // Choosing a technician on the board highlights the route and fades the others.
            let tech = want["Technicians"][1]["UserName"].as_str().unwrap().to_string();
            b.click(&format!("[data-key=\"t:{tech}\"]")).await;
            b.until(
                "the route to be highlighted",
                &format!("return document.querySelector('.route[data-route=\"{tech}\"]').classList.contains('is-selected') && document.querySelectorAll('.route.is-faded').length === {}", routes.len() - 1),
            )
            .await;
            b.shot_doc("map", Some("board-map")).await;
            // Choosing a stop on the map opens that visit on the board.
            let num = want["Technicians"][1]["Visits"][1]["OrderNum"].as_str().unwrap().to_string();
            b.js(&format!("document.querySelector('.stop[data-stop=\"{num}\"]').dispatchEvent(new MouseEvent('click', {{bubbles: true}})); return true")).await;
            b.until_text("#panel-title", &num).await;
            b.until(
                "the block to be selected",
                &format!("return document.querySelector('[data-order=\"{num}\"]').getAttribute('aria-pressed') === 'true'"),
            )
            .await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_booking_made_over_the_api_appears_on_the_open_board_within_two_seconds_without_a_reload()
{
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let f = fleet(&app).await;
    app.put_order(&f.dispatcher, "WO-X", &closed_order("WO-X", "tom"))
        .await
        .expect(201);
    app.user("acme", "dani", Role::Dispatcher).await;
    let date = (Timestamp::now().to_zoned(crate::helpers::tz()).date() + 1.day()).to_string();
    let app = Arc::new(app);
    let tech = f.tech.token.clone();
    with_browser_at("board_live", TABLET, |b| {
        let (app, date) = (app.clone(), date.clone());
        async move {
            log_in(&b, &app.address, &format!("#/day/{AREA}/{date}"), "dani", "dani-pw").await;
            drawn(&b).await;
            assert_eq!(b.js("return document.querySelectorAll('.visit').length").await, 0);
            b.js("window.stillTheSamePage = true; return true").await;
            let r = app
                .book_followup(&tech, "WO-X", &book_body(window(1, 1)))
                .await
                .expect(200);
            let booked = Instant::now();
            let num = r.body["OrderNum"].as_str().unwrap().to_string();
            b.until(
                "the booked visit on the board",
                &format!("return !!document.querySelector('[data-order=\"{num}\"]')"),
            )
            .await;
            let waited = booked.elapsed();
            eprintln!("the booking appeared after {waited:?}");
            assert!(waited.as_millis() < 2000, "appeared after {waited:?}");
            assert_eq!(b.js("return window.stillTheSamePage === true").await, json!(true), "the page was reloaded");
            // Marked as a follow-up of WO-X, and counted.
            let label = b
                .js(&format!("return document.querySelector('[data-order=\"{num}\"]').getAttribute('aria-label')"))
                .await;
            assert!(label.as_str().unwrap().contains("follow-up of WO-X"), "{label}");
            b.until_text("#day-totals", "Follow-up visits1").await;
            b.shot_doc("tablet", Some("board-tablet")).await;
            b.check_accessibility("the board on a tablet").await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_admin_changes_rest_api_book_job_in_the_settings_and_a_bad_value_is_refused_in_place() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let f = fleet(&app).await;
    let app = Arc::new(app);
    let admin = f.admin.clone();
    with_browser_at("board_settings", DESKTOP, |b| {
        let app = app.clone();
        async move {
            log_in(&b, &app.address, "#/settings/config", "ada", "ada-pw").await;
            b.find("#cfg-BookJob").await;
            b.check_accessibility("the settings").await;
            b.type_into("#cfg-BookJob", "https://93.184.215.14/book").await;
            b.click("#config-form button[type=submit]").await;
            b.until(
                "the error at the field",
                "const f = document.getElementById('cfg-BookJob'); return !!f && f.closest('.field').classList.contains('field--error') && f.getAttribute('aria-invalid') === 'true'",
            )
            .await;
            b.until_text("#cfg-BookJob-error", "{0}").await;
            b.until_text(".error-summary", "{0}").await;
            b.shot_doc("settings-error", Some("board-settings-error")).await;
            b.check_accessibility("the settings with an error").await;
            let cfg = app.get_config(&admin).await.expect(200);
            assert_eq!(cfg.body["RestApi"]["BookJob"], "builtin:", "nothing was saved");
            // The value kept in the field, corrected, is saved.
            b.type_into("#cfg-BookJob", "https://93.184.215.14/book/{0}").await;
            b.click("#config-form button[type=submit]").await;
            b.find("#saved").await;
            let cfg = app.get_config(&admin).await.expect(200);
            assert_eq!(cfg.body["RestApi"]["BookJob"], "https://93.184.215.14/book/{0}");
            assert_eq!(cfg.body["RestApi"]["SearchAppts"], "builtin:", "the rest kept");
        }
    })
    .await;
}

#[tokio::test]
async fn a_technician_opening_the_board_is_refused() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    fleet(&app).await;
    let app = Arc::new(app);
    with_browser_at("board_refused", DESKTOP, |b| {
        let app = app.clone();
        async move {
            log_in(&b, &app.address, "", "tom", "tom-pw").await;
            b.find("#refused").await;
            assert_eq!(
                b.js("return document.querySelectorAll('.timeline, #map').length")
                    .await,
                0
            );
            assert_eq!(
                b.js("return document.getElementById('nav').hidden").await,
                true
            );
            b.check_accessibility("the refusal").await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_board_of_500_technicians_renders_and_stays_usable() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let date = demo_day(&app, 500).await;
    app.user("demo", "dina", Role::Dispatcher).await;
    let app = Arc::new(app);
    with_browser_at("board_500", DESKTOP, |b| {
        let (app, date) = (app.clone(), date.clone());
        async move {
            log_in(&b, &app.address, &format!("#/day/CHI-N/{date}"), "dina", "dina-pw").await;
            let timing = drawn(&b).await;
            eprintln!("board, 500 technicians: {timing}");
            assert_eq!(timing["technicians"], 500);
            // Usable: the last technician's row is reached by scrolling and its visit opens.
            let last = b
                .js("const rows = document.querySelectorAll('[data-row]'); const r = rows[rows.length - 1]; r.scrollIntoView(); return r.querySelector('.visit').dataset.order")
                .await;
            let last = last.as_str().unwrap().to_string();
            b.click(&format!("[data-order=\"{last}\"]")).await;
            b.until_text("#panel-title", &last).await;
        }
    })
    .await;
}

#[tokio::test]
async fn on_the_autumn_daylight_saving_day_hours_and_blocks_sit_at_their_local_times() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let f = fleet(&app).await;
    // A night shift on 25 October 2026, when Paris clocks go back from 03:00 to 02:00: the hour
    // from 01:00 to 02:00 lasts two hours.
    let mut tom = technician_body("tom");
    tom["Exceptions"] = json!([{"Date": "2026-10-25", "Start": "00:00", "End": "08:00"}]);
    app.sched_put(&f.admin, "technicians", "tom", &tom)
        .await
        .expect(200);
    for (num, start, end) in [
        // 01:30-02:30 summer time, then 03:30-04:30 winter time.
        (
            "WO-N1",
            "2026-10-24T23:30:00.000Z",
            "2026-10-25T00:30:00.000Z",
        ),
        (
            "WO-N2",
            "2026-10-25T02:30:00.000Z",
            "2026-10-25T03:30:00.000Z",
        ),
    ] {
        let order = json!({
            "OrderNum": num, "OrderType": "REPAIR", "OrderStatus": 1, "DispatchStatus": 3,
            "UserName": "tom", "PlannedStartDate": start, "PlannedEndDate": end,
            "Location": location(num),
        });
        app.put_order(&f.dispatcher, num, &order).await.expect(201);
    }
    app.user("acme", "dani", Role::Dispatcher).await;
    let app = Arc::new(app);
    with_browser_at("board_dst", DESKTOP, |b| {
        let app = app.clone();
        async move {
            log_in(&b, &app.address, &format!("#/day/{AREA}/2026-10-25"), "dani", "dani-pw").await;
            drawn(&b).await;
            let got = b.js(DRAWN_VISITS).await;
            let got = got.as_array().unwrap();
            assert_eq!(got.len(), 2);
            for g in got {
                for edge in ["dl", "dr"] {
                    let d = g[edge].as_f64().unwrap();
                    assert!(d.abs() <= 1.0, "{g}: {edge} is {d} px off");
                }
            }
            let label = |num: &str| {
                format!("return document.querySelector('[data-order=\"{num}\"]').getAttribute('aria-label')")
            };
            let l1 = b.js(&label("WO-N1")).await;
            assert!(l1.as_str().unwrap().contains("01:30 to 02:30"), "{l1}");
            let l2 = b.js(&label("WO-N2")).await;
            assert!(l2.as_str().unwrap().contains("03:30 to 04:30"), "{l2}");
            let ticks = b
                .js(r#"const o = {}; for (const t of document.querySelector('[data-row]').querySelectorAll('.grid')) {
                         o[t.dataset.hour] = t.getBoundingClientRect().left; } return o"#)
                .await;
            let at = |k: &str| ticks[k].as_f64().unwrap_or_else(|| panic!("no hour line {k}: {ticks}"));
            let ratio = (at("02:00") - at("01:00")) / (at("03:00") - at("02:00"));
            assert!((ratio - 2.0).abs() < 0.05, "01:00 to 02:00 is {ratio} hours wide: {ticks}");
            b.shot("dst").await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_admin_imports_a_roster_file_and_the_server_refuses_a_bad_technician_in_place() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let f = fleet(&app).await;
    // The CSV `revisit import` reads: ann is good; bob's home is off the globe.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roster.csv");
    std::fs::write(
        &file,
        "UserName,Name,ServiceAreaIDs,Skills,HomeLat,HomeLon,Shifts\n\
         ann,Ann Lee,LYON,HVAC:2;GEN,45.77,4.84,\"Mon-Fri,Sun 08:00-12:00; Sat 09:00-13:00\"\n\
         bob,Bob Roy,LYON,HVAC,145.77,4.84,Mon-Fri 08:00-17:00\n",
    )
    .unwrap();
    let app = Arc::new(app);
    let admin = f.admin.clone();
    with_browser_at("board_import", DESKTOP, |b| {
        let (app, file) = (app.clone(), file.clone());
        async move {
            log_in(&b, &app.address, "#/settings/import", "ada", "ada-pw").await;
            b.find("#roster")
                .await
                .send_keys(file.to_str().unwrap())
                .await
                .expect("choose the file");
            b.click("form button[type=submit]").await;
            b.until_text("[role=status]", "1 of 2 imported").await;
            b.until_text("[role=status]", "$.Home.Lat").await;
            b.check_accessibility("the import's results").await;
            let ann = app.sched_get(&admin, "technicians", "ann").await.expect(200);
            assert_eq!(
                ann.body["Shifts"][0]["Days"],
                json!(["Mon", "Tue", "Wed", "Thu", "Fri", "Sun"])
            );
            assert_eq!(ann.body["Skills"][0], json!({"Code": "HVAC", "Level": 2}));
            app.sched_get(&admin, "technicians", "bob").await.expect(404);

            // ann edited with a bad shift: the server's reason at the editor, nothing saved.
            b.goto(&format!("{}/board/#/settings/technicians", app.address)).await;
            b.click("[aria-label=\"Edit ann\"]").await;
            b.find(".editor textarea").await;
            b.js(r#"const t = document.querySelector('.editor textarea'); const o = JSON.parse(t.value);
                    o.Shifts[0].End = '07:00'; t.value = JSON.stringify(o); return true"#)
                .await;
            b.click(".editor button[type=submit]").await;
            b.until_text(".editor .error-message", "$.Shifts[0]").await;
            b.check_accessibility("a technician refused").await;
            let again = app.sched_get(&admin, "technicians", "ann").await.expect(200);
            assert_eq!(again.body["Shifts"][0]["End"], "12:00");
        }
    })
    .await;
}

#[tokio::test]
async fn the_admin_creates_a_technician_user_with_its_profile_and_deactivates_it_and_refusals_show_in_place()
 {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let f = fleet(&app).await;
    let app = Arc::new(app);
    let admin = f.admin.clone();
    with_browser_at("board_users", DESKTOP, |b| {
        let app = app.clone();
        async move {
            let user = |name: &'static str| {
                let app = app.clone();
                let admin = admin.clone();
                async move {
                    app.request(
                        reqwest::Method::GET,
                        &format!("/admin/v1/users/{name}"),
                        Some(&admin),
                        None,
                    )
                    .await
                }
            };
            log_in(&b, &app.address, "#/settings/users", "ada", "ada-pw").await;
            b.find("#user-form").await;
            b.until_text("#users", "tom").await;
            b.check_accessibility("the users").await;

            // A password too short: the server's reason at the field, nobody created.
            b.type_into("#user-name", "tia").await;
            b.type_into("#user-password", "short").await;
            let mut profile = technician_body("tia");
            profile.as_object_mut().unwrap().remove("UserName");
            b.js(&format!(
                "document.getElementById('user-profile').value = {}; return true",
                serde_json::to_string(&profile.to_string()).unwrap()
            ))
            .await;
            b.click("#user-form button[type=submit]").await;
            b.until_text("#user-password-error", "8 to 1024").await;
            b.until_text(".error-summary", "8 to 1024").await;
            b.check_accessibility("a user refused").await;
            user("tia").await.expect(404);

            // Corrected: the technician and its scheduler profile are created together.
            b.until(
                "the name and profile kept",
                "return document.getElementById('user-name').value === 'tia' && document.getElementById('user-profile').value.includes('Shifts')",
            )
            .await;
            b.type_into("#user-password", "tia-long-password").await;
            b.click("#user-form button[type=submit]").await;
            b.until_text("#saved", "tia was created as technician, with its technician profile")
                .await;
            let tia = user("tia").await.expect(200);
            assert_eq!(tia.body["Role"], "technician");
            assert_eq!(tia.body["Active"], true);
            assert_eq!(tia.body["TechnicianProfile"], true);
            app.sched_get(&admin, "technicians", "tia").await.expect(200);
            app.login("tia", "tia-long-password").await;

            // Deactivated: it can no longer log in.
            b.js("window.confirm = () => true; return true").await;
            b.click("[aria-label=\"Deactivate tia\"]").await;
            b.until_text("#saved", "tia was deactivated").await;
            assert_eq!(user("tia").await.expect(200).body["Active"], false);
            app.create_jwt("tia", "tia-long-password").await.expect(401);
            b.find("[aria-label=\"Reactivate tia\"]").await;

            // The last admin cannot deactivate itself: the server's detail at its card.
            b.js("window.confirm = () => true; return true").await;
            b.click("[aria-label=\"Deactivate ada\"]").await;
            b.until_text(".card .error-message", "last active admin").await;
            b.check_accessibility("the last admin refused").await;
            assert_eq!(user("ada").await.expect(200).body["Active"], true);
        }
    })
    .await;
}

#[tokio::test]
async fn a_booking_refused_as_fully_booked_is_counted_in_the_open_boards_totals_of_today() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await.unwrap();
    let f = fleet(&app).await;
    app.put_order(&f.dispatcher, "WO-X", &closed_order("WO-X", "tom"))
        .await
        .expect(201);
    // tom, the only technician, busy through tomorrow's afternoon window.
    let full = window(1, 1);
    let start = full.0 - jiff::SignedDuration::from_mins(30);
    let fmt = revisit::domain::time::format;
    app.put_order(
        &f.dispatcher,
        "BUSY-1",
        &json!({"OrderNum": "BUSY-1", "OrderType": "REPAIR", "OrderStatus": 1, "DispatchStatus": 3,
            "UserName": "tom", "PlannedStartDate": fmt(start),
            "PlannedEndDate": fmt(start + jiff::SignedDuration::from_hours(5)),
            "Location": location("BUSY-1")}),
    )
    .await
    .expect(201);
    let today = Timestamp::now()
        .to_zoned(crate::helpers::tz())
        .date()
        .to_string();
    let app = Arc::new(app);
    let tech = f.tech.token.clone();
    with_browser_at("board_refused", DESKTOP, |b| {
        let (app, today) = (app.clone(), today.clone());
        async move {
            log_in(
                &b,
                &app.address,
                &format!("#/day/{AREA}/{today}"),
                "dora",
                "dora-pw",
            )
            .await;
            drawn(&b).await;
            b.until_text("#day-totals", "Refused as fully booked0")
                .await;
            let r = app.book_followup(&tech, "WO-X", &book_body(full)).await;
            assert_eq!(r.status, 409, "{}", r.body);
            b.until_text("#day-totals", "Refused as fully booked1")
                .await;
        }
    })
    .await;
}
