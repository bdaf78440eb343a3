//! Offers that tell their cost (`REOPTIMISE.md`): added travel, the best few flagged, and a policy
//! that orders them by cost.

mod common;

use std::collections::HashMap;

use common::*;
use revisit_scheduler::{
    GreatCircle, OfferOrder, Policy, Snapshot, Technician, Travel, Visit, WorkCenter, search,
};

const MON: &str = "2026-11-30";
const TUE: &str = "2026-12-01";

fn snap<'a>(
    wcs: &'a [WorkCenter],
    techs: &'a [Technician],
    visits: &'a HashMap<String, Vec<Visit>>,
) -> Snapshot<'a> {
    Snapshot {
        work_centers: wcs,
        technicians: techs,
        visits,
    }
}

/// Ann lives 10 km from the job; on Tuesday she is already at the job's street at 13:00.
fn setup(
    order: OfferOrder,
) -> (
    Vec<WorkCenter>,
    Vec<Technician>,
    HashMap<String, Vec<Visit>>,
) {
    let policy = Policy {
        horizon_days: 3,
        offer_order: order,
        ..Policy::default()
    };
    let wcs = vec![work_center("CHI-N", policy)];
    let techs = vec![tech("ann", near(0.0, 0.0))];
    let v = visits(vec![(
        "ann",
        vec![visit(
            "V",
            at(TUE, "13:00"),
            60,
            near(0.0, 10.0),
            win(TUE, "12:00", "16:00"),
        )],
    )]);
    (wcs, techs, v)
}

#[test]
fn each_offer_tells_its_added_travel_and_the_cheapest_are_flagged_best() {
    let (wcs, techs, v) = setup(OfferOrder::Chronological);
    let job = job(near(0.0, 10.0), 60);
    let out = search(&snap(&wcs, &techs, &v), &job, at(MON, "06:00"));
    let trip = i64::from(
        GreatCircle::from_policy(&Policy::default()).minutes(near(0.0, 0.0), near(0.0, 10.0)),
    );
    let rows: Vec<(&str, i64, bool)> = out
        .offers
        .iter()
        .map(|o| (o.desc.as_str(), o.added_travel_minutes, o.best))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("Mon 30 Nov, 08:00-12:00", 2 * trip, false),
            ("Mon 30 Nov, 12:00-16:00", 2 * trip, false),
            ("Mon 30 Nov, 16:00-20:00", 2 * trip, false),
            ("Tue 1 Dec, 08:00-12:00", 0, true),
            ("Tue 1 Dec, 12:00-16:00", 0, true),
            ("Tue 1 Dec, 16:00-20:00", 0, true),
            ("Wed 2 Dec, 08:00-12:00", 2 * trip, false),
            ("Wed 2 Dec, 12:00-16:00", 2 * trip, false),
            ("Wed 2 Dec, 16:00-20:00", 2 * trip, false),
        ],
        "Tuesday's windows join the visit already there"
    );
    // The grading cost is the added travel + the per-day penalty (no preferred technician).
    for o in &out.offers {
        let day = ["Mon", "Tue", "Wed"]
            .iter()
            .position(|d| o.desc.starts_with(d))
            .unwrap() as f64;
        assert_eq!(o.cost, o.added_travel_minutes as f64 + 5.0 * day);
        assert!(!o.repair);
    }
}

#[test]
fn a_policy_can_order_offers_by_cost_and_the_default_stays_chronological() {
    let (wcs, techs, v) = setup(OfferOrder::Cost);
    let job = job(near(0.0, 10.0), 60);
    let out = search(&snap(&wcs, &techs, &v), &job, at(MON, "06:00"));
    let descs: Vec<&str> = out.offers.iter().map(|o| o.desc.as_str()).collect();
    assert_eq!(
        &descs[..4],
        &[
            "Tue 1 Dec, 08:00-12:00",
            "Tue 1 Dec, 12:00-16:00",
            "Tue 1 Dec, 16:00-20:00",
            "Mon 30 Nov, 08:00-12:00",
        ]
    );
    assert!(out.offers.windows(2).all(|p| p[0].cost <= p[1].cost));

    let (wcs, techs, v) = setup(OfferOrder::Chronological);
    let out = search(&snap(&wcs, &techs, &v), &job, at(MON, "06:00"));
    assert!(
        out.offers
            .windows(2)
            .all(|p| p[0].window.start < p[1].window.start)
    );
    assert_eq!(Policy::default().offer_order, OfferOrder::Chronological);
}

#[test]
fn best_offers_sets_how_many_are_flagged() {
    let (mut wcs, techs, v) = setup(OfferOrder::Chronological);
    wcs[0].policy.best_offers = 1;
    let job = job(near(0.0, 10.0), 60);
    let out = search(&snap(&wcs, &techs, &v), &job, at(MON, "06:00"));
    let best: Vec<&str> = out
        .offers
        .iter()
        .filter(|o| o.best)
        .map(|o| o.desc.as_str())
        .collect();
    assert_eq!(best, vec!["Tue 1 Dec, 08:00-12:00"]);
    wcs[0].policy.best_offers = 0;
    let out = search(&snap(&wcs, &techs, &v), &job, at(MON, "06:00"));
    assert!(out.offers.iter().all(|o| !o.best));
}
