//! Details an operator or integrator meets: a date as the list's `From`/`To`, query-parameter
//! errors titled as such, and a technician reading the configuration without its third-party
//! endpoints and credentials.

use revisit::domain::Role;
use serde_json::json;

use crate::{
    both_backends,
    helpers::{assert_invalid, fleet},
};

both_backends!(
    a_date_alone_in_from_or_to_is_the_start_of_that_day_in_utc,
    |app| async move {
        let d = app.user("acme", "dora", Role::Dispatcher).await.token;
        for (num, start) in [
            ("WO-NOV", "2026-11-30T23:59:59.999Z"),
            ("WO-DEC1", "2026-12-01T00:00:00.000Z"),
            ("WO-DEC2", "2026-12-02T08:00:00.000Z"),
        ] {
            let body = json!({"OrderStatus": 1, "UserName": "tom", "PlannedStartDate": start});
            app.put_order(&d, num, &body).await.expect(201);
        }
        assert_eq!(
            app.list_nums(&d, &[("From", "2026-12-01")]).await,
            ["WO-DEC1", "WO-DEC2"]
        );
        assert_eq!(
            app.list_nums(&d, &[("From", "2026-12-01"), ("To", "2026-12-02")])
                .await,
            ["WO-DEC1"]
        );
        // Not a date: 400, titled for a query parameter, naming it.
        for bad in ["2026-13-01", "2026-1-01", "26-12-01"] {
            let r = app.list_orders(&d, &[("From", bad)]).await;
            assert_invalid(&r, 400, "From");
            assert_eq!(r.body["title"], "Invalid query parameter", "{}", r.body);
        }
        let r = app.list_orders(&d, &[("Limit", "0")]).await;
        assert_eq!(r.body["title"], "Invalid query parameter", "{}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("Limit")
        );
    }
);

both_backends!(
    a_technician_reads_the_configuration_without_third_party_urls_or_credentials,
    |app| async move {
        let f = fleet(&app).await;
        let cfg = json!({
            "RestApi": {"SearchAppts": "builtin:"},
            "PartsOrdering": {"EntityServiceURI": "https://parts.example.com/orders"},
            "ExportNotifications": {"WorkOrderClosed": {"URL": "https://hooks.example.com/x",
                "Headers": {"X-Api-Key": "k-123"}, "Authentication": {"ClientSecret": "s-456"}}},
            "FollowUp": {"AllowAnyReason": true}
        });
        app.post_config(&f.admin, &cfg).await.expect(200);
        let admin_view = app.get_config(&f.admin).await.expect(200).body;
        assert_eq!(
            admin_view["PartsOrdering"]["EntityServiceURI"],
            "https://parts.example.com/orders"
        );
        let tech_view = app.get_config(&f.tech.token).await.expect(200).body;
        let text = tech_view.to_string();
        for secret in ["parts.example.com", "hooks.example.com", "k-123", "s-456"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(tech_view["PartsOrdering"]["EntityServiceURI"], "[redacted]");
        assert_eq!(tech_view["RestApi"]["SearchAppts"], "builtin:");
        assert_eq!(tech_view["FollowUp"]["AllowAnyReason"], true);
        // A dispatcher sees it whole, as the admin does.
        assert_eq!(
            app.get_config(&f.dispatcher).await.expect(200).body,
            admin_view
        );
    }
);
