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
