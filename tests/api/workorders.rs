use revisit::domain::Role;
use serde_json::json;

use crate::{
    both_backends,
    helpers::{WO, assert_error, assert_invalid},
};

both_backends!(
    a_work_order_is_created_replaced_read_patched_closed_and_deleted,
    |app| async move {
        let d = app.user("acme", "dora", Role::Dispatcher).await.token;
        let order = json!({
            "OrderNum": "WO-1",
            "OrderType": "REPAIR",
            "OrderStatus": 1,
            "UserName": "alice",
            "PlannedStartDate": "2026-12-01T09:00:00+01:00",
            "PlannedEndDate": "2026-12-01T10:30:00.5Z",
            "Location": {"ServiceAreaID": "north", "Gate": {"Code": "1234"}},
            "TimeConstraints": [
                {"ID": "a", "Type": "1001", "Period": {"Start": "2026-12-01T08:00:00Z", "End": "2026-12-01T12:00:00Z"}},
                {"ID": "b", "Type": "1002", "Period": {"Start": "2026-12-02T08:00:00Z", "End": "2026-12-02T12:00:00Z"}}
            ],
            "Custom": {"Nested": [1, {"Deep": true}]},
            "Notes": "ring twice",
        });

        // PUT creates: 201 with Location.
        let r = app.put_order(&d, "WO-1", &order).await.expect(201);
        assert_eq!(r.header("location"), Some(&*format!("{WO}/WO-1")));
        // PUT again replaces: 200.
        let mut replaced = order.clone();
        replaced["Description"] = json!("replaced");
        app.put_order(&d, "WO-1", &replaced).await.expect(200);

        // GET round-trips unknown properties, nested ones too; times come back canonical.
        let got = app.get_order(&d, "WO-1").await.expect(200).body;
        assert_eq!(got["Custom"], json!({"Nested": [1, {"Deep": true}]}));
        assert_eq!(got["Location"]["Gate"], json!({"Code": "1234"}));
        assert_eq!(got["Description"], "replaced");
        assert_eq!(got["PlannedStartDate"], "2026-12-01T08:00:00.000Z");
        assert_eq!(got["PlannedEndDate"], "2026-12-01T10:30:00.500Z");
        assert_eq!(
            got["TimeConstraints"][0]["Period"]["Start"],
            "2026-12-01T08:00:00.000Z"
        );

        // Closed Incomplete without a ReasonCode: 400 naming it, and nothing changed.
        let r = app
            .patch_order(&d, "WO-1", &json!({"OrderStatus": 4097}))
            .await;
        assert_invalid(&r, 400, "$.ReasonCode");
        let after = app.get_order(&d, "WO-1").await.expect(200).body;
        assert_eq!(after, got);

        // With a follow-up reason: 200.
        let r = app
            .patch_order(
                &d,
                "WO-1",
                &json!({"OrderStatus": 4097, "ReasonCode": "2001"}),
            )
            .await
            .expect(200);
        assert_eq!(r.body["OrderStatus"], 4097);
        assert_eq!(r.body["Custom"], got["Custom"], "PATCH keeps the rest");

        // `_fields` removes properties, top-level and dotted.
        let r = app
            .patch_order(&d, "WO-1", &json!({"_fields": ["Notes", "Location.Gate"]}))
            .await
            .expect(200);
        assert!(r.body.get("Notes").is_none(), "{}", r.body);
        assert!(r.body["Location"].get("Gate").is_none(), "{}", r.body);
        assert_eq!(r.body["Location"]["ServiceAreaID"], "north");

        // A TimeConstraints item goes with "Delete": true.
        let r = app
            .patch_order(
                &d,
                "WO-1",
                &json!({"TimeConstraints": [{"ID": "a", "Delete": true}]}),
            )
            .await
            .expect(200);
        let tcs = r.body["TimeConstraints"].as_array().unwrap();
        assert_eq!(tcs.len(), 1);
        assert_eq!(tcs[0]["ID"], "b");
        let stored = app.get_order(&d, "WO-1").await.expect(200).body;
        assert_eq!(stored, r.body, "the answer is what was stored");

        // A closed order cannot move back to New.
        let r = app
            .patch_order(&d, "WO-1", &json!({"OrderStatus": 1}))
            .await;
        assert_error(&r, 409);
        // Nor lose its status, which would reopen it as silently.
        let r = app
            .patch_order(&d, "WO-1", &json!({"_fields": ["OrderStatus"]}))
            .await;
        assert_error(&r, 409);
        let mut without_status = stored.clone();
        without_status
            .as_object_mut()
            .unwrap()
            .remove("OrderStatus");
        assert_error(&app.put_order(&d, "WO-1", &without_status).await, 409);
        // An unknown status is a 400.
        let r = app
            .patch_order(&d, "WO-1", &json!({"OrderStatus": 12}))
            .await;
        assert_invalid(&r, 400, "$.OrderStatus");
        // OrderNum in the body must match the path.
        let mut other = stored.clone();
        other["OrderNum"] = json!("WO-2");
        let r = app.put_order(&d, "WO-1", &other).await;
        assert_invalid(&r, 400, "$.OrderNum");
        assert_eq!(app.get_order(&d, "WO-1").await.expect(200).body, stored);

        // POST updates the given top-level properties.
        let r = app
            .post_order(&d, "WO-1", &json!({"Priority": 2}))
            .await
            .expect(200);
        assert_eq!(r.body["Priority"], 2);
        assert_eq!(r.body["OrderStatus"], 4097);

        // DELETE: 204, then 404.
        let r = app.delete_order(&d, "WO-1").await.expect(204);
        assert_eq!(r.body, serde_json::Value::Null);
        assert_error(&app.get_order(&d, "WO-1").await, 404);
        assert_error(&app.delete_order(&d, "WO-1").await, 404);
        // POST, PATCH on a missing order: 404.
        assert_error(
            &app.post_order(&d, "WO-1", &json!({"Priority": 1})).await,
            404,
        );
        assert_error(
            &app.patch_order(&d, "WO-1", &json!({"Priority": 1})).await,
            404,
        );
    }
);

both_backends!(
    a_technician_changes_only_their_own_orders_and_cannot_create_or_delete,
    |app| async move {
        let d = app.user("acme", "dora", Role::Dispatcher).await.token;
        let alice = app.user("acme", "alice", Role::Technician).await.token;
        app.put_order(&d, "WO-A", &json!({"UserName": "alice", "OrderStatus": 1}))
            .await
            .expect(201);
        app.put_order(&d, "WO-B", &json!({"UserName": "bob", "OrderStatus": 1}))
            .await
            .expect(201);

        app.patch_order(&alice, "WO-A", &json!({"OrderStatus": 7}))
            .await
            .expect(200);
        assert_error(&app.get_order(&alice, "WO-B").await, 403);
        assert_error(
            &app.patch_order(&alice, "WO-B", &json!({"OrderStatus": 7}))
                .await,
            403,
        );
        assert_error(
            &app.patch_order(&alice, "WO-A", &json!({"UserName": "bob"}))
                .await,
            403,
        );
        assert_error(
            &app.put_order(&alice, "WO-C", &json!({"UserName": "alice"}))
                .await,
            403,
        );
        assert_error(&app.delete_order(&alice, "WO-A").await, 403);
        assert_eq!(
            app.get_order(&d, "WO-B").await.expect(200).body["OrderStatus"],
            1
        );
        assert_eq!(
            app.get_order(&d, "WO-A").await.expect(200).body["UserName"],
            "alice"
        );
        assert_error(&app.get_order(&d, "WO-C").await, 404);
    }
);

both_backends!(
    a_work_order_reads_back_as_written_with_its_nulls_unknown_properties_and_coordinates,
    |app| async move {
        let d = app.user("acme", "dora", Role::Dispatcher).await.token;
        let body = json!({
            "OrderType": "REPAIR", "OrderStatus": 1, "UserName": "alice",
            "ReasonCode": null, "Description": null, "PlannedDur": null,
            "PlannedStartDate": "2026-12-01T09:00:00+01:00",
            "Custom": {"Nested": [1, {"Deep": null}]},
            "Account": {"AccountNum": "C1", "AccountType": 1002, "Tier": null},
            "Location": {"ServiceAreaID": "north", "LocationNum": null, "Gate": {"Code": "1234"},
                "Address": {"Lat": "41.95", "Lon": -87.65, "Zip": "60601"}},
            "TimeConstraints": [
                {"ID": "a", "Type": 1001, "Source": "crm",
                 "Period": {"Start": "2026-12-01T08:00:00Z", "End": "2026-12-01T12:00:00Z", "Zone": "CT"}},
                null
            ],
            "RequiredParts": [{"ProdNum": "P1", "Qty:": 2, "Bin": "A3", "EstimatedDelivery": null}],
        });
        let mut expected = body.clone();
        expected["OrderNum"] = json!("WO-1");
        expected["PlannedStartDate"] = json!("2026-12-01T08:00:00.000Z");
        expected["TimeConstraints"][0]["Period"]["Start"] = json!("2026-12-01T08:00:00.000Z");
        expected["TimeConstraints"][0]["Period"]["End"] = json!("2026-12-01T12:00:00.000Z");
        expected["RequiredParts"] =
            json!([{"ProdNum": "P1", "Qty": 2, "Bin": "A3", "EstimatedDelivery": null}]);

        let r = app.put_order(&d, "WO-1", &body).await.expect(201);
        assert_eq!(r.body, expected, "the answer");
        assert_eq!(
            app.get_order(&d, "WO-1").await.expect(200).body,
            expected,
            "read back"
        );
        let list = app.list_orders(&d, &[]).await.expect(200).body;
        assert_eq!(list["WorkOrders"], json!([expected]), "listed");

        // PATCH merges into nested objects and items, keeping what it does not name.
        let r = app
            .patch_order(
                &d,
                "WO-1",
                &json!({"Location": {"Address": {"Lat": 42.0}, "Gate": {"Open": true}},
                    "TimeConstraints": [{"ID": "a", "Period": {"End": "2026-12-01T14:00:00+01:00"}}]}),
            )
            .await
            .expect(200);
        expected["Location"]["Address"]["Lat"] = json!(42.0);
        expected["Location"]["Gate"]["Open"] = json!(true);
        expected["TimeConstraints"][0]["Period"]["End"] = json!("2026-12-01T13:00:00.000Z");
        assert_eq!(r.body, expected);
        assert_eq!(app.get_order(&d, "WO-1").await.expect(200).body, expected);

        // The follow-up rule is the office's: a technician may not set it, not even to null.
        let alice = app.user("acme", "alice", Role::Technician).await.token;
        assert_error(
            &app.patch_order(&alice, "WO-1", &json!({"CanScheduleFollowup": null}))
                .await,
            403,
        );
        app.patch_order(&alice, "WO-1", &json!({"OrderStatus": 7}))
            .await
            .expect(200);
    }
);

both_backends!(
    a_stored_work_order_read_back_equals_what_was_written,
    |app| async move {
        use revisit::domain::{EntityId, WorkOrderNum, workorder::WorkOrder};

        app.user("acme", "dora", Role::Dispatcher).await;
        let entity = EntityId::parse("acme").unwrap();
        let store = app.state.store.clone();
        let order = |num: &str| {
            let body = json!({
                "OrderStatus": 4097, "ReasonCode": "2001", "CanScheduleFollowup": null,
                "PlannedStartDate": "2026-12-01T08:00:00.1239Z", "PlannedDur": 90, "Unknown": [null],
                "Location": {"ServiceAreaID": "N", "Address": {"Lat": " 41.95 ", "Lon": -87.65, "Door": 2}},
                "TimeConstraints": [{"ID": "w", "Type": "1001", "X": 1,
                    "Period": {"Start": "2026-12-01T08:00:00Z", "End": "2026-12-01T12:00:00Z"}}],
                "RequiredParts": [{"ProdNum": "P1", "Qty": 1.5, "EstimatedDelivery": "2026-11-30T10:00:00-06:00"}],
            });
            let num = WorkOrderNum::parse(num).unwrap();
            WorkOrder::parse(&num, body.as_object().unwrap().clone()).unwrap()
        };
        let written = order("WO-1");
        let w = written.clone();
        store
            .write_work_order(
                &entity,
                &WorkOrderNum::parse("WO-1").unwrap(),
                Box::new(move |_| Ok(w)),
            )
            .await
            .unwrap();
        let read = store
            .get_work_order(&entity, &WorkOrderNum::parse("WO-1").unwrap())
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(read, written);

        let imported = order("WO-2");
        store
            .import_work_orders(&entity, std::slice::from_ref(&imported))
            .await
            .unwrap();
        let read = store
            .get_work_order(&entity, &WorkOrderNum::parse("WO-2").unwrap())
            .await
            .unwrap()
            .expect("imported");
        assert_eq!(read, imported);
        assert_eq!(read.to_value(), imported.to_value());
    }
);
