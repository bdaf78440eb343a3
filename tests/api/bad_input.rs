use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use revisit::{auth::token::Claims, domain::Role};
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{TEST_SECRET, TestApp, WO, assert_error, assert_invalid},
};

/// A dispatcher's token and an order WO-1 to attack; returns the token and the stored order.
async fn target(app: &TestApp) -> (String, Value) {
    let d = app.user("acme", "dora", Role::Dispatcher).await.token;
    let body = json!({"OrderStatus": 1, "UserName": "alice", "Notes": "untouched"});
    app.put_order(&d, "WO-1", &body).await.expect(201);
    let stored = app.get_order(&d, "WO-1").await.expect(200).body;
    (d, stored)
}

fn claims(role: &str, exp_offset: i64) -> Claims {
    let now = jiff::Timestamp::now().as_second();
    Claims {
        sub: "alice".into(),
        ent: "acme".into(),
        role: role.into(),
        iss: "revisit".into(),
        aud: "seiapi".into(),
        iat: now.min(now + exp_offset) - 60,
        exp: now + exp_offset,
    }
}

fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

both_backends!(
    malformed_mistyped_and_hostile_bodies_are_refused_without_changing_anything,
    |app| async move {
        let (d, stored) = target(&app).await;
        let path = format!("{WO}/WO-1");

        // Malformed JSON.
        for body in ["{", "{\"OrderStatus\": 4096,}", "", "null", "[1]"] {
            let r = app
                .raw(Method::PUT, &path, Some(&d), "application/json", body)
                .await;
            assert_error(&r, 400);
        }
        // Wrong types, each named by its JSON path.
        let r = app
            .put_order(
                &d,
                "WO-1",
                &json!({"OrderStatus": "4096", "PlannedDur": "long", "CanScheduleFollowup": "yes",
                    "Location": {"POReq": "no", "Address": {"Lat": 123}},
                    "RequiredParts": [{"ProdNum": "P-1", "Qty": "two"}],
                    "TimeConstraints": [{"Type": "1001", "Period": {"Start": "soon", "End": "2026-12-01T10:00:00Z"}}],
                    "PlannedStartDate": 20261201}),
            )
            .await;
        assert_error(&r, 400);
        let paths = crate::helpers::invalid_paths(&r);
        for p in [
            "$.OrderStatus",
            "$.PlannedDur",
            "$.CanScheduleFollowup",
            "$.Location.POReq",
            "$.Location.Address.Lat",
            "$.RequiredParts[0].Qty",
            "$.TimeConstraints[0].Period.Start",
            "$.PlannedStartDate",
        ] {
            assert!(paths.iter().any(|x| x == p), "{p} not in {paths:?}");
        }
        assert_invalid(
            &app.patch_order(&d, "WO-1", &json!({"_fields": "Notes"}))
                .await,
            400,
            "$._fields",
        );
        assert_invalid(
            &app.patch_order(&d, "WO-1", &json!({"_fields": ["OrderNum"]}))
                .await,
            400,
            "$._fields[0]",
        );

        // Nesting 20,000 deep inside a property: refused, and the server lives on.
        let deep = format!(
            "{{\"Notes\": {}{}}}",
            "[".repeat(20_000),
            "]".repeat(20_000)
        );
        let r = app
            .raw(Method::PATCH, &path, Some(&d), "application/json", deep)
            .await;
        assert_error(&r, 400);
        app.request(Method::GET, "/healthz", None, None)
            .await
            .expect(200);

        // A 2 MiB body is over the 1 MiB limit.
        let big = format!("{{\"Notes\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
        let r = app
            .raw(Method::PUT, &path, Some(&d), "application/json", big)
            .await;
        assert_error(&r, 413);

        // A body that is not JSON by its content type.
        let r = app
            .raw(
                Method::PUT,
                &path,
                Some(&d),
                "text/plain",
                r#"{"Notes": "changed"}"#,
            )
            .await;
        assert_error(&r, 415);

        // U+0000 cannot be stored by PostgreSQL: refused on both backends, never a 500.
        for (body, at) in [
            (json!({"Notes": "a\u{0}b"}), "$.Notes"),
            (
                json!({"Location": {"ServiceAreaID": "n\u{0}"}}),
                "$.Location.ServiceAreaID",
            ),
            (json!({"Custom": [1, {"x\u{0}": 1}]}), "$.Custom[1]"),
        ] {
            assert_invalid(&app.put_order(&d, "WO-1", &body).await, 400, at);
        }
        let r = app.post_config(&d, &json!({"X": "\u{0}"})).await;
        assert_invalid(&r, 400, "$.X");

        // Bad path segments: a number with surrounding spaces, too long, or not UTF-8.
        for num in ["%20WO-1", &"x".repeat(65), "%FF%FE"] {
            assert_error(&app.get_order(&d, num).await, 400);
        }
        for path in [
            "/seiapi/v3/SysConfig/%FF",
            "/seiapi/v3/trans/SystemCategory/Default/%FF",
        ] {
            assert_error(&app.request(Method::GET, path, Some(&d), None).await, 400);
        }

        assert_eq!(app.get_order(&d, "WO-1").await.expect(200).body, stored);
    }
);

both_backends!(
    missing_forged_expired_and_unsigned_tokens_are_401s,
    |app| async move {
        let (d, stored) = target(&app).await;
        let alice = app.user("acme", "alice", Role::Technician).await.token;
        let change = json!({"Notes": "changed"});
        let path = format!("{WO}/WO-1");

        let mut forged = Vec::new();
        // The payload edited to make alice an admin, the signature kept.
        let parts: Vec<&str> = alice.split('.').collect();
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["role"], "technician");
        payload["role"] = json!("admin");
        let edited = URL_SAFE_NO_PAD.encode(payload.to_string());
        forged.push(format!("{}.{edited}.{}", parts[0], parts[2]));
        // Re-signed with another key.
        forged.push(sign(
            &claims("admin", 3600),
            "another-secret-0123456789abcdef0123",
        ));
        // Expired an hour ago, signed with the right key.
        forged.push(sign(&claims("admin", -3600), TEST_SECRET));
        // Right key, wrong audience.
        let mut aud = claims("admin", 3600);
        aud.aud = "elsewhere".into();
        forged.push(sign(&aud, TEST_SECRET));
        // `alg: none`, unsigned.
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims_json =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("admin", 3600)).unwrap());
        forged.push(format!("{none}.{claims_json}."));
        // Garbage.
        forged.push("not-a-token".into());

        for token in &forged {
            assert_error(&app.get_order(token, "WO-1").await, 401);
            assert_error(&app.patch_order(token, "WO-1", &change).await, 401);
            assert_error(
                &app.post_config(token, &json!({"RestApi": {"BookJob": "builtin:"}}))
                    .await,
                401,
            );
        }
        // No token at all.
        assert_error(&app.request(Method::GET, &path, None, None).await, 401);
        assert_error(
            &app.request(Method::PATCH, &path, None, Some(&change)).await,
            401,
        );
        assert_error(
            &app.request(Method::GET, "/seiapi/v3/trans/WorkOrders", None, None)
                .await,
            401,
        );

        // The genuine tokens still work, and nothing changed.
        assert_eq!(app.get_order(&alice, "WO-1").await.expect(200).body, stored);
        assert_eq!(app.get_order(&d, "WO-1").await.expect(200).body, stored);
        assert_eq!(app.get_config(&d).await.expect(200).body, json!({}));
    }
);

both_backends!(
    unknown_routes_and_wrong_methods_answer_with_the_error_object,
    |app| async move {
        let r = app
            .request(Method::GET, "/seiapi/v3/nothing", None, None)
            .await;
        assert_error(&r, 404);
        let r = app.request(Method::DELETE, "/createjwt", None, None).await;
        assert_error(&r, 405);
        let r = app
            .request(Method::PUT, "/seiapi/v3/trans/WorkOrders", None, None)
            .await;
        assert_error(&r, 405);
        // A request id sent by the client is echoed; otherwise one is made.
        let r = app
            .client
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], "trace-me-42");
        let r = app
            .request(Method::GET, "/healthz", None, None)
            .await
            .expect(200);
        assert!(r.header("x-request-id").is_some());
        app.request(Method::GET, "/readyz", None, None)
            .await
            .expect(200);
    }
);
