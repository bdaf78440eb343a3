use reqwest::Method;

use crate::both_backends;

both_backends!(
    the_openapi_document_describes_the_work_order_paths,
    |app| async move {
        let r = app
            .request(Method::GET, "/seiapi/v3/openapi.json", None, None)
            .await
            .expect(200);
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        );
        assert!(
            r.body["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.")),
            "{}",
            r.body["openapi"]
        );
        let paths = r.body["paths"].as_object().expect("paths");
        for p in [
            "/seiapi/v3/trans/WorkOrder/{WorkOrderNum}",
            "/seiapi/v3/trans/WorkOrders",
            "/seiapi/v3/trans/WorkOrder/{WorkOrderID}/Followup",
            "/seiapi/v3/trans/Appointments/OpenSlots",
            "/createjwt",
        ] {
            assert!(paths.contains_key(p), "{p} missing");
        }
    }
);

both_backends!(
    the_openapi_document_has_unique_operation_ids_and_lists_401_on_every_protected_operation,
    |app| async move {
        let doc = app
            .request(Method::GET, "/seiapi/v3/openapi.json", None, None)
            .await
            .expect(200)
            .body;
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let Some(id) = op["operationId"].as_str() else {
                    continue;
                };
                assert!(ids.insert(id.to_string()), "{id} used twice");
                let codes = op["responses"].as_object().expect("responses");
                if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                    assert!(codes.contains_key("401"), "{method} {path} lists no 401");
                }
                if op.get("requestBody").is_some() {
                    for c in ["400", "413", "415"] {
                        assert!(codes.contains_key(c), "{method} {path} lists no {c}");
                    }
                }
            }
        }
        let book = &doc["paths"]["/seiapi/v3/trans/WorkOrder/{WorkOrderID}/Followup"]["post"];
        assert!(book["responses"]["504"].is_object());
        assert_eq!(
            book["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/BookJob"
        );
        let search = &doc["paths"]["/seiapi/v3/trans/Appointments/OpenSlots"]["post"];
        assert!(search["responses"]["503"].is_object());
        assert!(doc["paths"]["/metrics"].is_object());
        // Revisit's own operational APIs are documented too.
        for (path, method) in [
            ("/admin/v1/users", "post"),
            ("/notifications/v1/events", "get"),
            ("/notifications/v1/events/{EventID}/replay", "post"),
            ("/notifications/v1/secret/rotate", "post"),
            ("/scheduling/v1/reoptimize", "post"),
        ] {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
        let wo = &doc["components"]["schemas"]["WorkOrder"]["properties"];
        for p in [
            "OrderNum",
            "OrderStatus",
            "ReasonCode",
            "UserName",
            "PlannedStartDate",
            "Location",
        ] {
            assert!(wo[p].is_object(), "WorkOrder.{p} undocumented");
        }
    }
);
