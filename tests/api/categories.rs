use revisit::domain::Role;
use serde_json::json;

use crate::{
    both_backends,
    helpers::{assert_error, assert_invalid},
};

fn codes(v: &serde_json::Value) -> Vec<String> {
    v["Items"]
        .as_array()
        .expect("Items")
        .iter()
        .map(|i| i["Code"].as_str().expect("Code").to_string())
        .collect()
}

both_backends!(
    reason_categories_have_defaults_and_an_admin_replaces_them_for_the_entity,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let dora = app.user("acme", "dora", Role::Dispatcher).await.token;

        let r = app.get_category(&dora, "15").await.expect(200);
        assert_eq!(r.body["Code"], "15");
        assert_eq!(codes(&r.body), ["2001", "2002", "2003", "2004"]);
        let r = app.get_category(&dora, "16").await.expect(200);
        assert_eq!(codes(&r.body), ["1001", "1002", "1003", "1004"]);
        let r = app.get_category(&dora, "10").await.expect(200);
        assert_eq!(
            codes(&r.body),
            ["1", "6", "7", "8", "9", "1001", "4096", "4097"]
        );

        // An admin replaces 15; others may not.
        let new15 = json!({"Items": [{"Code": "2101", "Desc": "Waiting for the landlord"}]});
        assert_error(&app.put_category(&dora, "15", &new15).await, 403);
        let r = app.put_category(&admin, "15", &new15).await.expect(200);
        assert_eq!(codes(&r.body), ["2101"]);
        assert_eq!(
            codes(&app.get_category(&dora, "15").await.expect(200).body),
            ["2101"]
        );

        // A code may not be in both lists.
        let r = app
            .put_category(
                &admin,
                "16",
                &json!({"Items": [{"Code": "2101", "Desc": "x"}]}),
            )
            .await;
        assert_invalid(&r, 400, "$.Items[0].Code");
        assert_eq!(
            codes(&app.get_category(&dora, "16").await.expect(200).body),
            ["1001", "1002", "1003", "1004"]
        );
        // Category 10 is fixed; unknown categories do not exist.
        assert_error(&app.put_category(&admin, "10", &new15).await, 409);
        assert_error(&app.get_category(&admin, "99").await, 404);
        assert_error(&app.put_category(&admin, "99", &new15).await, 404);

        // Closing an order uses the entity's lists: the new code works, the replaced one is gone.
        app.put_order(&dora, "WO-1", &json!({"OrderStatus": 7}))
            .await
            .expect(201);
        let r = app
            .patch_order(
                &dora,
                "WO-1",
                &json!({"OrderStatus": 4097, "ReasonCode": "2001"}),
            )
            .await;
        assert_invalid(&r, 400, "$.ReasonCode");
        let r = app
            .patch_order(
                &dora,
                "WO-1",
                &json!({"OrderStatus": 4097, "ReasonCode": "2101"}),
            )
            .await
            .expect(200);
        assert_eq!(r.body["ReasonCode"], "2101");
    }
);
