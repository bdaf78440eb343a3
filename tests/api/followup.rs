use revisit::domain::Role;
use serde_json::json;

use crate::{
    booking, both_backends, followable_order,
    helpers::{Resp, TestApp, assert_error, assert_invalid},
    search,
};

/// The error kinds of the follow-up preconditions (§5.3, §5.4, §7).
const PRECONDITION_KINDS: [&str; 4] = [
    "urn:revisit:error:not-closed-incomplete",
    "urn:revisit:error:followup-not-allowed",
    "urn:revisit:error:reason-no-followup",
    "urn:revisit:error:no-scheduler",
];

#[track_caller]
fn assert_conflict(r: &Resp, kind: &str) {
    assert_error(r, 409);
    assert_eq!(r.body["type"], kind, "{}", r.body);
}

/// With every precondition met and a scheduler configured, the answer comes from the scheduler.
#[track_caller]
fn assert_reached_the_scheduler(r: &Resp) {
    assert_ne!(r.status.as_u16(), 500, "{}", r.body);
    assert!(
        ![400, 401, 403, 404].contains(&r.status.as_u16()),
        "a precondition failed: {} {}",
        r.status,
        r.body
    );
    let kind = r.body["type"].as_str().unwrap_or_default();
    assert!(!PRECONDITION_KINDS.contains(&kind), "{}", r.body);
}

struct Cast {
    admin: String,
    dora: String,
    alice: String,
    bob: String,
    /// A dispatcher of another entity.
    gus: String,
}

/// acme's admin, dispatcher and two technicians, globex's dispatcher, and the orders:
/// WO-1 (alice's, every precondition holds), WO-OPEN (not closed), WO-NORULE (own rule false),
/// WO-NOPROP (no own rule: the configuration decides), WO-16 (closed with a category-16 reason),
/// and globex's WO-G (followable too).
async fn cast(app: &TestApp) -> Cast {
    let c = Cast {
        admin: app.user("acme", "ada", Role::Admin).await.token,
        dora: app.user("acme", "dora", Role::Dispatcher).await.token,
        alice: app.user("acme", "alice", Role::Technician).await.token,
        bob: app.user("acme", "bob", Role::Technician).await.token,
        gus: app.user("globex", "gus", Role::Dispatcher).await.token,
    };
    let mut orders = vec![("WO-1", followable_order("WO-1", "alice"))];
    let mut open = followable_order("WO-OPEN", "alice");
    open["OrderStatus"] = json!(7);
    open.as_object_mut().unwrap().remove("ReasonCode");
    orders.push(("WO-OPEN", open));
    let mut norule = followable_order("WO-NORULE", "alice");
    norule["CanScheduleFollowup"] = json!(false);
    orders.push(("WO-NORULE", norule));
    let mut noprop = followable_order("WO-NOPROP", "alice");
    noprop
        .as_object_mut()
        .unwrap()
        .remove("CanScheduleFollowup");
    orders.push(("WO-NOPROP", noprop));
    let mut no_followup = followable_order("WO-16", "alice");
    no_followup["ReasonCode"] = json!("1001");
    orders.push(("WO-16", no_followup));
    for (num, body) in orders {
        app.put_order(&c.dora, num, &body).await.expect(201);
    }
    app.put_order(&c.gus, "WO-G", &followable_order("WO-G", "gina"))
        .await
        .expect(201);
    c
}

both_backends!(
    booking_a_followup_checks_every_precondition_before_the_scheduler,
    |app| async move {
        let c = cast(&app).await;
        let book = |token: &str, num: &str| {
            let (token, num) = (token.to_string(), num.to_string());
            let app = &app;
            async move { app.book_followup(&token, &num, &booking()).await }
        };

        // Every precondition holds but no scheduler is configured.
        assert_conflict(
            &book(&c.alice, "WO-1").await,
            "urn:revisit:error:no-scheduler",
        );
        assert_conflict(
            &book(&c.dora, "WO-1").await,
            "urn:revisit:error:no-scheduler",
        );

        // The order is not Closed Incomplete.
        assert_conflict(
            &book(&c.alice, "WO-OPEN").await,
            "urn:revisit:error:not-closed-incomplete",
        );
        // The rule is false: on the order itself ...
        let r = book(&c.alice, "WO-NORULE").await;
        assert_conflict(&r, "urn:revisit:error:followup-not-allowed");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("CanScheduleFollowup")
        );
        // ... by default when nothing says otherwise ...
        assert_conflict(
            &book(&c.alice, "WO-NOPROP").await,
            "urn:revisit:error:followup-not-allowed",
        );
        // ... from the configuration's default, and its order type wins over the default.
        app.post_config(
            &c.admin,
            &json!({"WorkOrderRules": {"Default": {"CanScheduleFollowup": false}}}),
        )
        .await
        .expect(200);
        assert_conflict(
            &book(&c.alice, "WO-NOPROP").await,
            "urn:revisit:error:followup-not-allowed",
        );
        app.post_config(
            &c.admin,
            &json!({"WorkOrderRules": {"REPAIR": {"CanScheduleFollowup": true}}}),
        )
        .await
        .expect(200);
        assert_conflict(
            &book(&c.alice, "WO-NOPROP").await,
            "urn:revisit:error:no-scheduler",
        );
        // Closed with a category-16 reason: no follow-up is needed.
        assert_conflict(
            &book(&c.alice, "WO-16").await,
            "urn:revisit:error:reason-no-followup",
        );

        // ... unless the entity allows any reason.
        app.post_config(&c.admin, &json!({"FollowUp": {"AllowAnyReason": true}}))
            .await
            .expect(200);
        assert_conflict(
            &book(&c.alice, "WO-16").await,
            "urn:revisit:error:no-scheduler",
        );
        app.post_config(&c.admin, &json!({"FollowUp": null}))
            .await
            .expect(200);

        // Another entity's order does not exist for the caller; a missing one neither.
        assert_error(&book(&c.gus, "WO-1").await, 404);
        assert_error(&book(&c.alice, "WO-G").await, 404);
        assert_error(&book(&c.alice, "WO-NONE").await, 404);
        // A technician may not book from someone else's order.
        assert_error(&book(&c.bob, "WO-1").await, 403);

        // No slot, two slots, or a mismatched OriginalOrderNum: 400.
        let r = app.book_followup(&c.alice, "WO-1", &json!({})).await;
        assert_invalid(&r, 400, "$.TimeConstraints");
        let mut two = booking();
        let slot = two["TimeConstraints"][0].clone();
        two["TimeConstraints"].as_array_mut().unwrap().push(slot);
        assert_invalid(
            &app.book_followup(&c.alice, "WO-1", &two).await,
            400,
            "$.TimeConstraints",
        );
        let mut mismatch = booking();
        mismatch["OriginalOrderNum"] = json!("WO-2");
        assert_invalid(
            &app.book_followup(&c.alice, "WO-1", &mismatch).await,
            400,
            "$.OriginalOrderNum",
        );
        let mut matching = booking();
        matching["OriginalOrderNum"] = json!("WO-1");
        assert_conflict(
            &app.book_followup(&c.alice, "WO-1", &matching).await,
            "urn:revisit:error:no-scheduler",
        );

        // With the built-in scheduler configured every precondition passes. The built-in
        // scheduler is being plugged in in parallel: until it is, the answer is 501; afterwards
        // it is the scheduler's own (a booking or a slot conflict). Either way, never a 500 and
        // never a precondition's error.
        app.post_config(
            &c.admin,
            &json!({"RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"}}),
        )
        .await
        .expect(200);
        assert_reached_the_scheduler(&book(&c.alice, "WO-1").await);
        // The preconditions still hold with a scheduler configured.
        assert_conflict(
            &book(&c.alice, "WO-16").await,
            "urn:revisit:error:reason-no-followup",
        );
        assert_error(&book(&c.bob, "WO-1").await, 403);
    }
);

both_backends!(
    searching_open_slots_for_an_order_checks_the_same_preconditions,
    |app| async move {
        let c = cast(&app).await;

        // No scheduler configured: every precondition holds.
        assert_conflict(
            &app.open_slots(&c.alice, &search("WO-1")).await,
            "urn:revisit:error:no-scheduler",
        );
        // Another entity's order: 404; someone else's: 403; the rule false: 409.
        assert_error(&app.open_slots(&c.gus, &search("WO-1")).await, 404);
        assert_error(&app.open_slots(&c.bob, &search("WO-1")).await, 403);
        assert_conflict(
            &app.open_slots(&c.alice, &search("WO-NORULE")).await,
            "urn:revisit:error:followup-not-allowed",
        );
        assert_conflict(
            &app.open_slots(&c.alice, &search("WO-OPEN")).await,
            "urn:revisit:error:not-closed-incomplete",
        );
        assert_conflict(
            &app.open_slots(&c.alice, &search("WO-16")).await,
            "urn:revisit:error:reason-no-followup",
        );
        // A technician searches only for one of their orders.
        let mut without = search("WO-1");
        without.as_object_mut().unwrap().remove("OriginalOrderNum");
        assert_invalid(
            &app.open_slots(&c.alice, &without).await,
            400,
            "$.OriginalOrderNum",
        );
        // A dispatcher may search without one.
        assert_conflict(
            &app.open_slots(&c.dora, &without).await,
            "urn:revisit:error:no-scheduler",
        );
        // A period must start before it ends.
        let mut backwards = search("WO-1");
        backwards["TimeConstraints"][0]["Period"]["End"] = json!("2030-12-01T00:00:00Z");
        assert_invalid(
            &app.open_slots(&c.alice, &backwards).await,
            400,
            "$.TimeConstraints[0].Period.Start",
        );

        app.post_config(&c.admin, &json!({"RestApi": {"SearchAppts": "builtin:"}}))
            .await
            .expect(200);
        // See the booking test: 501 until the built-in scheduler is plugged in.
        assert_reached_the_scheduler(&app.open_slots(&c.alice, &search("WO-1")).await);
        assert_error(&app.open_slots(&c.bob, &search("WO-1")).await, 403);
    }
);
