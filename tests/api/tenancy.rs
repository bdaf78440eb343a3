use revisit::domain::Role;
use serde_json::json;

use crate::{booking, both_backends, followable_order, helpers::assert_error, search};

both_backends!(
    another_entity_cannot_see_or_change_an_order_and_may_reuse_its_number,
    |app| async move {
        let a = app.user("acme", "ada", Role::Admin).await.token;
        let b = app.user("globex", "gus", Role::Admin).await.token;
        for token in [&a, &b] {
            app.post_config(
                token,
                &json!({"RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"}}),
            )
            .await
            .expect(200);
        }
        app.put_order(&a, "WO-1", &followable_order("WO-1", "alice"))
            .await
            .expect(201);
        let original = app.get_order(&a, "WO-1").await.expect(200).body;

        // B sees nothing of A's.
        assert_error(&app.get_order(&b, "WO-1").await, 404);
        let r = app.list_orders(&b, &[]).await.expect(200);
        assert_eq!(r.body["Total"], 0);
        assert_eq!(
            app.list_nums(&b, &[("UserName", "alice")]).await,
            Vec::<String>::new()
        );
        // ... and changes nothing of A's.
        assert_error(
            &app.patch_order(&b, "WO-1", &json!({"OrderStatus": 4096}))
                .await,
            404,
        );
        assert_error(
            &app.post_order(&b, "WO-1", &json!({"OrderStatus": 4096}))
                .await,
            404,
        );
        assert_error(&app.delete_order(&b, "WO-1").await, 404);
        assert_error(&app.book_followup(&b, "WO-1", &booking()).await, 404);
        assert_error(&app.open_slots(&b, &search("WO-1")).await, 404);

        // A PUT by B of the same number creates B's own order.
        let theirs = json!({"OrderStatus": 1, "UserName": "gina", "Notes": "globex's"});
        app.put_order(&b, "WO-1", &theirs).await.expect(201);
        assert_eq!(
            app.get_order(&b, "WO-1").await.expect(200).body["Notes"],
            "globex's"
        );
        assert_eq!(app.get_order(&a, "WO-1").await.expect(200).body, original);
        assert_eq!(app.list_nums(&a, &[]).await, ["WO-1"]);
        assert_eq!(app.list_orders(&b, &[]).await.expect(200).body["Total"], 1);
        // B deleting its own WO-1 leaves A's.
        app.delete_order(&b, "WO-1").await.expect(204);
        assert_error(&app.get_order(&b, "WO-1").await, 404);
        assert_eq!(app.get_order(&a, "WO-1").await.expect(200).body, original);
    }
);

both_backends!(
    configuration_and_reason_categories_belong_to_one_entity,
    |app| async move {
        let a = app.user("acme", "ada", Role::Admin).await.token;
        let b = app.user("globex", "gus", Role::Admin).await.token;
        app.post_config(&a, &json!({"RestApi": {"BookJob": "builtin:"}}))
            .await
            .expect(200);
        app.put_category(&a, "15", &json!({"Items": [{"Code": "2101", "Desc": "x"}]}))
            .await
            .expect(200);
        assert_eq!(app.get_config(&b).await.expect(200).body, json!({}));
        let r = app.get_category(&b, "15").await.expect(200);
        assert_eq!(r.body["Items"].as_array().unwrap().len(), 4, "{}", r.body);
    }
);
