//! The admin API (`/admin/v1/...`): users of the admin's own entity, and the technician
//! logins joined with the scheduler's technician profiles.

use reqwest::Method;
use revisit::domain::Role;
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{TestApp, assert_error, assert_invalid, fleet, technician_body},
};

const USERS: &str = "/admin/v1/users";

async fn create(app: &TestApp, token: &str, body: &Value) -> crate::helpers::Resp {
    app.request(Method::POST, USERS, Some(token), Some(body))
        .await
}

async fn patch(app: &TestApp, token: &str, name: &str, body: &Value) -> crate::helpers::Resp {
    app.request(
        Method::PATCH,
        &format!("{USERS}/{name}"),
        Some(token),
        Some(body),
    )
    .await
}

both_backends!(
    an_admin_creates_lists_reads_and_changes_users_of_its_entity,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let r = create(
            &app,
            &admin,
            &json!({"UserName": "dora2", "Role": "dispatcher", "Password": "dora2-secret"}),
        )
        .await
        .expect(201);
        assert_eq!(r.header("location"), Some("/admin/v1/users/dora2"));
        assert_eq!(r.body["UserName"], "dora2");
        assert_eq!(r.body["Role"], "dispatcher");
        assert_eq!(r.body["Active"], true);
        let text = r.body.to_string();
        assert!(
            !text.contains("dora2-secret") && !text.contains("argon2"),
            "{text}"
        );

        // The new user logs in and works as a dispatcher.
        let dora = app.login("dora2", "dora2-secret").await;
        app.list_orders(&dora, &[]).await.expect(200);

        let list = app
            .request(Method::GET, USERS, Some(&admin), None)
            .await
            .expect(200);
        let names: Vec<&str> = list.body["Users"]
            .as_array()
            .expect("Users")
            .iter()
            .map(|u| u["UserName"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["ada", "dora2"]);
        assert!(!list.body.to_string().contains("argon2"));

        let one = app
            .request(Method::GET, &format!("{USERS}/dora2"), Some(&admin), None)
            .await
            .expect(200);
        assert_eq!(one.body["Role"], "dispatcher");

        // Change of role: the old token (dispatcher) is refused at once, a new log-in works.
        let r = patch(&app, &admin, "dora2", &json!({"Role": "technician"}))
            .await
            .expect(200);
        assert_eq!(r.body["Role"], "technician");
        assert_error(&app.list_orders(&dora, &[]).await, 401);
        let dora = app.login("dora2", "dora2-secret").await;

        // Password reset: the old password no longer logs in, the new one does.
        patch(&app, &admin, "dora2", &json!({"Password": "a-new-secret"}))
            .await
            .expect(200);
        assert_error(&app.create_jwt("dora2", "dora2-secret").await, 401);
        app.login("dora2", "a-new-secret").await;

        // Deactivation: the token held is refused, and log-in too; reactivation restores it.
        let r = patch(&app, &admin, "dora2", &json!({"Active": false}))
            .await
            .expect(200);
        assert_eq!(r.body["Active"], false);
        assert_error(&app.list_orders(&dora, &[]).await, 401);
        assert_error(&app.create_jwt("dora2", "a-new-secret").await, 401);
        patch(&app, &admin, "dora2", &json!({"Active": true}))
            .await
            .expect(200);
        app.login("dora2", "a-new-secret").await;

        // A name taken anywhere is a 409; bad bodies are 400s naming the property.
        app.user("globex", "gus", Role::Admin).await;
        assert_error(
            &create(
                &app,
                &admin,
                &json!({"UserName": "gus", "Role": "technician", "Password": "long enough"}),
            )
            .await,
            409,
        );
        assert_invalid(
            &create(
                &app,
                &admin,
                &json!({"UserName": "x1", "Role": "boss", "Password": "long enough"}),
            )
            .await,
            400,
            "$.Role",
        );
        assert_invalid(
            &create(
                &app,
                &admin,
                &json!({"UserName": "x1", "Role": "technician", "Password": "short"}),
            )
            .await,
            400,
            "$.Password",
        );
        assert_invalid(
            &create(
                &app,
                &admin,
                &json!({"UserName": "x1", "Role": "technician", "Password": "long enough", "Colour": 1}),
            )
            .await,
            400,
            "$.Colour",
        );
        assert_invalid(
            &patch(&app, &admin, "dora2", &json!({"Active": "no"})).await,
            400,
            "$.Active",
        );
        assert_error(
            &patch(&app, &admin, "nobody", &json!({"Active": false})).await,
            404,
        );
    }
);

both_backends!(
    the_entitys_last_active_admin_cannot_be_demoted_or_deactivated,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        for body in [json!({"Active": false}), json!({"Role": "dispatcher"})] {
            let r = patch(&app, &admin, "ada", &body).await;
            assert_error(&r, 409);
            assert_eq!(r.body["type"], "urn:revisit:error:last-admin");
        }
        // With a second admin, the first may step down.
        create(
            &app,
            &admin,
            &json!({"UserName": "abe", "Role": "admin", "Password": "abe-secret"}),
        )
        .await
        .expect(201);
        patch(&app, &admin, "ada", &json!({"Role": "dispatcher"}))
            .await
            .expect(200);
    }
);

both_backends!(
    dispatchers_and_technicians_may_not_use_the_admin_api_and_no_token_is_a_401,
    |app| async move {
        let admin = app.user("acme", "ada", Role::Admin).await.token;
        let dispatcher = app.user("acme", "dora", Role::Dispatcher).await.token;
        let tech = app.user("acme", "tom", Role::Technician).await.token;
        for token in [&dispatcher, &tech] {
            assert_error(
                &app.request(Method::GET, USERS, Some(token), None).await,
                403,
            );
            assert_error(
                &app.request(Method::GET, "/admin/v1/entity", Some(token), None)
                    .await,
                403,
            );
            assert_error(
                &app.request(Method::GET, "/admin/v1/technicians", Some(token), None)
                    .await,
                403,
            );
            assert_error(
                &create(
                    &app,
                    token,
                    &json!({"UserName": "evil", "Role": "admin", "Password": "long enough"}),
                )
                .await,
                403,
            );
            // A technician cannot make itself admin.
            assert_error(
                &patch(&app, token, "tom", &json!({"Role": "admin"})).await,
                403,
            );
        }
        assert_error(&app.create_jwt("evil", "long enough").await, 401);
        assert_error(&app.request(Method::GET, USERS, None, None).await, 401);
        let e = app
            .request(Method::GET, "/admin/v1/entity", Some(&admin), None)
            .await
            .expect(200);
        assert_eq!(e.body["EntityID"], "acme");
    }
);

both_backends!(
    an_admin_cannot_read_or_change_users_of_another_entity,
    |app| async move {
        let acme = app.user("acme", "ada", Role::Admin).await.token;
        let globex = app.user("globex", "gus", Role::Admin).await.token;
        let gina = app.user("globex", "gina", Role::Technician).await;
        assert_error(
            &app.request(Method::GET, &format!("{USERS}/gina"), Some(&acme), None)
                .await,
            404,
        );
        for body in [
            json!({"Active": false}),
            json!({"Password": "taken-over!"}),
            json!({"Role": "admin"}),
        ] {
            assert_error(&patch(&app, &acme, "gina", &body).await, 404);
        }
        // Nothing changed: gina's token and password still work, as a technician.
        app.list_orders(&gina.token, &[]).await.expect(200);
        app.login("gina", &gina.password).await;
        let list = app
            .request(Method::GET, USERS, Some(&acme), None)
            .await
            .expect(200);
        assert!(!list.body.to_string().contains("gina"), "{}", list.body);
        let theirs = app
            .request(Method::GET, &format!("{USERS}/gina"), Some(&globex), None)
            .await
            .expect(200);
        assert_eq!(theirs.body["Role"], "technician");
    }
);

both_backends!(
    a_technician_login_and_its_scheduler_profile_are_created_together_and_the_report_shows_the_missing_halves,
    |app| async move {
        let f = fleet(&app).await; // acme: ada, dora, tom (login and profile)
        let mut profile = technician_body("tina");
        profile.as_object_mut().expect("object").remove("UserName");
        let r = create(
            &app,
            &f.admin,
            &json!({"UserName": "tina", "Role": "technician", "Password": "tina-secret", "Technician": profile}),
        )
        .await
        .expect(201);
        assert_eq!(r.body["TechnicianProfile"], true);
        let stored = app.sched_get(&f.admin, "technicians", "tina").await.expect(200);
        assert_eq!(stored.body["UserName"], "tina");
        // The scheduler offers tina's windows at once: she logs in and is a known technician.
        app.login("tina", "tina-secret").await;

        // A bad profile creates nothing, neither login nor profile.
        let r = create(
            &app,
            &f.admin,
            &json!({"UserName": "tim", "Role": "technician", "Password": "tim-secret",
                    "Technician": {"ServiceAreaIDs": "LYON"}}),
        )
        .await;
        assert_error(&r, 400);
        assert_error(&app.create_jwt("tim", "tim-secret").await, 401);
        app.sched_get(&f.admin, "technicians", "tim").await.expect(404);
        // A profile for a dispatcher is refused.
        assert_invalid(
            &create(
                &app,
                &f.admin,
                &json!({"UserName": "dan", "Role": "dispatcher", "Password": "dan-secret",
                        "Technician": technician_body("dan")}),
            )
            .await,
            400,
            "$.Technician",
        );

        // A login without a profile, and a profile without a login.
        create(
            &app,
            &f.admin,
            &json!({"UserName": "ted", "Role": "technician", "Password": "ted-secret"}),
        )
        .await
        .expect(201);
        app.sched_put(&f.admin, "technicians", "ghost", &technician_body("ghost"))
            .await
            .expect(201);
        let report = app
            .request(Method::GET, "/admin/v1/technicians", Some(&f.admin), None)
            .await
            .expect(200);
        assert_eq!(report.body["Linked"], json!(["tina", "tom"]));
        assert_eq!(report.body["WithoutProfile"], json!(["ted"]));
        assert_eq!(report.body["WithoutLogin"], json!(["ghost"]));
        let ted = app
            .request(Method::GET, &format!("{USERS}/ted"), Some(&f.admin), None)
            .await
            .expect(200);
        assert_eq!(ted.body["TechnicianProfile"], false);
    }
);

both_backends!(
    a_new_entity_whose_admin_name_is_taken_is_not_created_at_all,
    |app| async move {
        use revisit::domain::{EntityId, UserName};
        let store = &app.state.store;
        app.user("acme", "ada", Role::Admin).await;
        let globex = EntityId::parse("globex").unwrap();
        let config =
            serde_json::Map::from_iter([("RestApi".to_string(), json!({"BookJob": "builtin:"}))]);
        // `revisit init`'s one transaction: the admin cannot be created, so neither is the
        // entity nor its configuration.
        let taken = store
            .create_entity_with_admin(&globex, &config, &UserName::parse("ada").unwrap(), "hash")
            .await;
        assert!(taken.is_err());
        assert!(!store.entity_exists(&globex).await.unwrap());
        let made = store
            .create_entity_with_admin(&globex, &config, &UserName::parse("gus").unwrap(), "hash")
            .await
            .unwrap();
        assert_eq!(made.role, Role::Admin);
        assert!(store.entity_exists(&globex).await.unwrap());
        let cfg = store
            .caller_context("gus", &globex, &[])
            .await
            .unwrap()
            .config;
        assert_eq!(cfg["RestApi"]["BookJob"], "builtin:");
        // And once only.
        let again = store
            .create_entity_with_admin(&globex, &config, &UserName::parse("gil").unwrap(), "hash")
            .await;
        assert!(again.is_err());
        assert!(store.find_user("gil").await.unwrap().is_none());
    }
);

both_backends!(
    a_password_over_1024_characters_is_refused,
    |app| async move {
        let f = fleet(&app).await;
        let long = "x".repeat(1025);
        let r = create(
            &app,
            &f.admin,
            &json!({"UserName": "lou", "Role": "dispatcher", "Password": long}),
        )
        .await;
        assert_invalid(&r, 400, "$.Password");
    }
);
