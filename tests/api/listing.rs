use revisit::domain::Role;
use serde_json::json;

use crate::{
    both_backends,
    helpers::{assert_error, assert_invalid},
};

both_backends!(
    the_list_filters_by_user_status_area_and_planned_start_and_pages_with_a_total,
    |app| async move {
        let d = app.user("acme", "dora", Role::Dispatcher).await.token;
        let alice = app.user("acme", "alice", Role::Technician).await.token;
        let orders = [
            ("WO-1", "alice", 1, "north", "2026-12-01T08:00:00Z"),
            ("WO-2", "alice", 7, "south", "2026-12-02T08:00:00Z"),
            ("WO-3", "bob", 4096, "north", "2026-12-03T08:00:00Z"),
            ("WO-4", "bob", 1, "south", "2026-12-04T08:00:00Z"),
            ("WO-5", "alice", 4096, "north", "2026-12-05T08:00:00Z"),
        ];
        for (num, user, status, area, start) in orders {
            let body = json!({"UserName": user, "OrderStatus": status,
                "Location": {"ServiceAreaID": area}, "PlannedStartDate": start});
            app.put_order(&d, num, &body).await.expect(201);
        }

        assert_eq!(
            app.list_nums(&d, &[]).await,
            ["WO-1", "WO-2", "WO-3", "WO-4", "WO-5"]
        );
        assert_eq!(
            app.list_nums(&d, &[("UserName", "bob")]).await,
            ["WO-3", "WO-4"]
        );
        assert_eq!(
            app.list_nums(&d, &[("OrderStatus", "1")]).await,
            ["WO-1", "WO-4"]
        );
        assert_eq!(
            app.list_nums(&d, &[("OrderStatus", "7,4096")]).await,
            ["WO-2", "WO-3", "WO-5"]
        );
        assert_eq!(
            app.list_nums(&d, &[("ServiceAreaID", "south")]).await,
            ["WO-2", "WO-4"]
        );
        // From is inclusive, To exclusive; any RFC 3339 offset is accepted.
        assert_eq!(
            app.list_nums(
                &d,
                &[
                    ("From", "2026-12-02T08:00:00Z"),
                    ("To", "2026-12-04T09:00:00+01:00")
                ]
            )
            .await,
            ["WO-2", "WO-3"]
        );
        assert_eq!(
            app.list_nums(&d, &[("UserName", "alice"), ("ServiceAreaID", "north")])
                .await,
            ["WO-1", "WO-5"]
        );

        // Paging: Limit and Offset, with the Total of the whole filtered list.
        let r = app
            .list_orders(&d, &[("Limit", "2"), ("Offset", "1")])
            .await
            .expect(200);
        assert_eq!(r.body["Total"], 5);
        assert_eq!(r.body["Limit"], 2);
        assert_eq!(r.body["Offset"], 1);
        let page: Vec<_> = r.body["WorkOrders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["OrderNum"].clone())
            .collect();
        assert_eq!(page, [json!("WO-2"), json!("WO-3")]);
        let r = app
            .list_orders(&d, &[("OrderStatus", "1"), ("Limit", "1"), ("Offset", "5")])
            .await
            .expect(200);
        assert_eq!(r.body["Total"], 2);
        assert_eq!(r.body["WorkOrders"], json!([]));

        // A technician sees only their own orders, and may not ask for another's.
        assert_eq!(app.list_nums(&alice, &[]).await, ["WO-1", "WO-2", "WO-5"]);
        assert_eq!(
            app.list_nums(&alice, &[("UserName", "alice"), ("OrderStatus", "4096")])
                .await,
            ["WO-5"]
        );
        assert_error(&app.list_orders(&alice, &[("UserName", "bob")]).await, 403);

        // Bad parameters are 400s naming the parameter.
        for limit in ["0", "-1", "many", "100000"] {
            assert_invalid(
                &app.list_orders(&d, &[("Limit", limit)]).await,
                400,
                "Limit",
            );
        }
        assert_invalid(
            &app.list_orders(&d, &[("Offset", "-3")]).await,
            400,
            "Offset",
        );
        assert_invalid(
            &app.list_orders(&d, &[("OrderStatus", "1,12")]).await,
            400,
            "OrderStatus",
        );
        assert_invalid(
            &app.list_orders(&d, &[("From", "yesterday")]).await,
            400,
            "From",
        );
    }
);
