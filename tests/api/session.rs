use revisit::domain::Role;

use crate::{both_backends, helpers::assert_error};

both_backends!(
    logging_in_gives_a_token_and_a_wrong_user_or_password_the_same_401,
    |app| async move {
        let alice = app.user("acme", "alice", Role::Technician).await;
        assert_eq!(alice.token.split('.').count(), 3, "a JWT");

        let wrong_password = app.create_jwt("alice", "not-her-pw").await;
        let wrong_user = app.create_jwt("mallory", "alice-pw").await;
        assert_error(&wrong_password, 401);
        assert_error(&wrong_user, 401);
        // No user enumeration: both answers are identical, and name nobody.
        assert_eq!(wrong_password.body, wrong_user.body);
        let text = wrong_user.body.to_string();
        assert!(
            !text.contains("mallory") && !text.contains("alice"),
            "{text}"
        );

        // Logging in again gives a token too; the token works.
        assert!(!app.login(&alice.name, &alice.password).await.is_empty());
        let r = app.list_orders(&alice.token, &[]).await.expect(200);
        assert_eq!(r.body["Total"], 0);
    }
);

both_backends!(
    logging_in_without_a_user_name_is_a_400_naming_the_property,
    |app| async move {
        let r = app
            .request(
                reqwest::Method::POST,
                "/createjwt",
                None,
                Some(&serde_json::json!({"password": "x"})),
            )
            .await;
        crate::helpers::assert_invalid(&r, 400, "$.username");
    }
);
