use reqwest::Method;
use revisit::domain::Role;
use serde_json::json;

use crate::{
    both_backends,
    helpers::{assert_error, assert_invalid},
};

both_backends!(
    the_entity_configuration_starts_empty_and_an_admin_merges_valid_settings,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        assert_eq!(app.get_config(&admin).await.expect(200).body, json!({}));

        let body = json!({
            "RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"},
            "WorkOrderRules": {"Default": {"CanScheduleFollowup": true}},
            "Custom": {"Kept": [1, 2]},
        });
        let r = app.post_config(&admin, &body).await.expect(200);
        assert_eq!(r.body, body);

        // A merge: properties absent from the body keep their value.
        let r = app
            .post_config(
                &admin,
                &json!({"RestApi": {"BookJob": "https://crm.example.com/wo/{0}/followup"}}),
            )
            .await
            .expect(200);
        let expected = json!({
            "RestApi": {"BookJob": "https://crm.example.com/wo/{0}/followup", "SearchAppts": "builtin:"},
            "WorkOrderRules": {"Default": {"CanScheduleFollowup": true}},
            "Custom": {"Kept": [1, 2]},
        });
        assert_eq!(r.body, expected);
        assert_eq!(app.get_config(&admin).await.expect(200).body, expected);
    }
);

both_backends!(
    invalid_configuration_values_are_400s_naming_the_property_and_change_nothing,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let good = json!({"RestApi": {"BookJob": "builtin:", "SearchAppts": "builtin:"}});
        app.post_config(&admin, &good).await.expect(200);

        let cases = [
            (
                json!({"RestApi": {"BookJob": "https://crm.example.com/wo/followup"}}),
                "$.RestApi.BookJob",
            ),
            (
                json!({"RestApi": {"BookJob": "ftp://crm.example.com/{0}"}}),
                "$.RestApi.BookJob",
            ),
            (
                json!({"RestApi": {"SearchAppts": "/appointments/open"}}),
                "$.RestApi.SearchAppts",
            ),
            (
                json!({"RestApi": {"SearchAppts": 12}}),
                "$.RestApi.SearchAppts",
            ),
            (json!({"RestApi": "builtin:"}), "$.RestApi"),
            (
                json!({"WorkOrderRules": {"Default": {"CanScheduleFollowup": "yes"}}}),
                "$.WorkOrderRules.Default.CanScheduleFollowup",
            ),
        ];
        for (body, path) in cases {
            let r = app.post_config(&admin, &body).await;
            assert_invalid(&r, 400, path);
            assert_eq!(
                app.get_config(&admin).await.expect(200).body,
                good,
                "after {body}"
            );
        }
    }
);

both_backends!(
    only_an_admin_changes_the_configuration_and_only_mobility_exists,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let dora = app.user("acme", "dora", Role::Dispatcher).await.token;
        let alice = app.user("acme", "alice", Role::Technician).await.token;
        let body = json!({"RestApi": {"BookJob": "builtin:"}});
        assert_error(&app.post_config(&dora, &body).await, 403);
        assert_error(&app.post_config(&alice, &body).await, 403);
        // Everyone in the entity may read it.
        assert_eq!(app.get_config(&alice).await.expect(200).body, json!({}));

        for method in [Method::GET, Method::POST] {
            let r = app
                .request(
                    method,
                    "/seiapi/v3/SysConfig/nexus",
                    Some(&admin),
                    Some(&body),
                )
                .await;
            assert_error(&r, 404);
        }
        assert_eq!(app.get_config(&admin).await.expect(200).body, json!({}));
    }
);

both_backends!(
    the_platforms_dotted_names_are_the_same_settings_and_misspellings_name_the_right_one,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        // The property as the platform's documentation names it: stored once, nested.
        let r = app
            .post_config(
                &admin,
                &json!({"RestApi.BookJob": "https://crm.example.com/wo/{0}/followup",
                        "RestApi.SearchAppts": "builtin:"}),
            )
            .await
            .expect(200);
        let expected = json!({"RestApi": {
            "BookJob": "https://crm.example.com/wo/{0}/followup", "SearchAppts": "builtin:"}});
        assert_eq!(r.body, expected);
        assert_eq!(app.get_config(&admin).await.expect(200).body, expected);
        // A dotted BookJob is checked like a nested one.
        let r = app
            .post_config(
                &admin,
                &json!({"RestApi.BookJob": "https://crm.example.com/wo"}),
            )
            .await;
        assert_invalid(&r, 400, "$.RestApi.BookJob");

        // Misspellings would be kept as unknown properties that change nothing: refused,
        // naming the right spelling, and nothing is changed.
        for (body, path, right) in [
            (
                json!({"RestAPI": {"BookJob": "builtin:"}}),
                "$.RestAPI",
                "RestApi",
            ),
            (
                json!({"restApi.BookJob": "builtin:"}),
                "$.restApi",
                "RestApi",
            ),
            (
                json!({"RestApi": {"bookJob": "builtin:"}}),
                "$.RestApi.bookJob",
                "BookJob",
            ),
        ] {
            let r = app.post_config(&admin, &body).await;
            assert_invalid(&r, 400, path);
            assert!(
                r.body.to_string().contains(&format!("\\\"{right}\\\"")),
                "{body}: {}",
                r.body
            );
        }
        assert_eq!(app.get_config(&admin).await.expect(200).body, expected);
    }
);
