//! Tenants and their API keys.

use serde_json::json;

use super::{ADMIN_KEY, Backend, Server, both_backends};

async fn tenants_lifecycle(backend: Backend) {
    let server = Server::spawn(backend).await;
    let created = server
        .post(
            "/v1/tenants",
            ADMIN_KEY,
            json!({"id": "acme", "name": "ACME"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["id"], "acme");
    assert_eq!(created.body["name"], "ACME");

    let again = server
        .post("/v1/tenants", ADMIN_KEY, json!({"id": "acme"}))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.field(), Some("id"));

    let dotted = server
        .post("/v1/tenants", ADMIN_KEY, json!({"id": "acme.inc"}))
        .await;
    assert_eq!(dotted.status, 400);
    assert_eq!(dotted.code(), "invalid");
    assert_eq!(dotted.field(), Some("id"));

    let unknown_field = server
        .post(
            "/v1/tenants",
            ADMIN_KEY,
            json!({"id": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(unknown_field.status, 400);
    assert_eq!(unknown_field.field(), Some("colour"));

    let got = server.get("/v1/tenants/acme", ADMIN_KEY).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["name"], "ACME");
    let missing = server.get("/v1/tenants/nobody", ADMIN_KEY).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "not_found");

    for id in ["beta", "gamma", "delta"] {
        let created = server
            .post("/v1/tenants", ADMIN_KEY, json!({"id": id}))
            .await;
        assert_eq!(created.status, 201);
    }
    // Pages of 3 by id: acme beta delta | gamma.
    let first = server.get("/v1/tenants?limit=3", ADMIN_KEY).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let ids: Vec<&str> = first.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["acme", "beta", "delta"]);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = server
        .get(&format!("/v1/tenants?limit=3&cursor={cursor}"), ADMIN_KEY)
        .await;
    assert_eq!(second.body["data"][0]["id"], "gamma");
    assert_eq!(second.body["data"].as_array().map(Vec::len), Some(1));
    assert!(second.body["next_cursor"].is_null());

    let bad_limit = server.get("/v1/tenants?limit=0", ADMIN_KEY).await;
    assert_eq!(bad_limit.status, 400);
    assert_eq!(bad_limit.field(), Some("limit"));
    let bad_cursor = server.get("/v1/tenants?cursor=%%%", ADMIN_KEY).await;
    assert_eq!(bad_cursor.status, 400, "{}", bad_cursor.text);
    assert_eq!(bad_cursor.code(), "invalid");
    let bad_query = server.get("/v1/tenants?limit=many", ADMIN_KEY).await;
    assert_eq!(bad_query.status, 400);
    assert_eq!(bad_query.code(), "invalid");

    let deleted = server.delete("/v1/tenants/gamma", ADMIN_KEY).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(server.get("/v1/tenants/gamma", ADMIN_KEY).await.status, 404);
    assert_eq!(
        server.delete("/v1/tenants/gamma", ADMIN_KEY).await.status,
        404
    );
    server.cleanup().await;
}
both_backends!(tenants_lifecycle);

async fn api_keys_lifecycle(backend: Backend) {
    let server = Server::spawn(backend).await;
    let key = server.tenant("acme").await;
    assert!(key.starts_with("sk_"));
    let listed = server.get("/v1/tenants/acme/api-keys", ADMIN_KEY).await;
    assert_eq!(listed.status, 200);
    let keys = listed.body["data"].as_array().expect("data");
    assert_eq!(keys.len(), 1);
    let prefix = keys[0]["prefix"].as_str().expect("prefix");
    assert!(key.starts_with(&format!("sk_{prefix}_")));
    assert!(keys[0].get("key").is_none());
    assert!(keys[0]["revoked_at"].is_null());

    // The key works for tenant routes.
    assert_eq!(server.get("/v1/sources", &key).await.status, 200);

    for _ in 0..2 {
        let more = server
            .post("/v1/tenants/acme/api-keys", ADMIN_KEY, json!({}))
            .await;
        assert_eq!(more.status, 201);
    }
    let first = server
        .get("/v1/tenants/acme/api-keys?limit=2", ADMIN_KEY)
        .await;
    assert_eq!(first.body["data"].as_array().map(Vec::len), Some(2));
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = server
        .get(
            &format!("/v1/tenants/acme/api-keys?limit=2&cursor={cursor}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(second.body["data"].as_array().map(Vec::len), Some(1));
    assert!(second.body["next_cursor"].is_null());

    let misspelt = server
        .post("/v1/tenants/acme/api-keys", ADMIN_KEY, json!({"nme": "x"}))
        .await;
    assert_eq!(misspelt.status, 400);
    assert_eq!(misspelt.field(), Some("nme"));
    let id = keys[0]["id"].as_str().expect("id");
    let revoked = server
        .delete(&format!("/v1/tenants/acme/api-keys/{id}"), ADMIN_KEY)
        .await;
    assert_eq!(revoked.status, 204);
    let after = server.get("/v1/sources", &key).await;
    assert_eq!(after.status, 401);
    assert_eq!(after.code(), "unauthorized");
    let listed = server.get("/v1/tenants/acme/api-keys", ADMIN_KEY).await;
    assert!(!listed.body["data"][0]["revoked_at"].is_null());

    assert_eq!(
        server
            .delete("/v1/tenants/acme/api-keys/key_nothing", ADMIN_KEY)
            .await
            .status,
        404
    );
    assert_eq!(
        server
            .post("/v1/tenants/nobody/api-keys", ADMIN_KEY, json!({}))
            .await
            .status,
        404
    );
    let by_prefix = server
        .get(
            &format!("/v1/tenants/acme/api-keys?prefix={prefix}"),
            ADMIN_KEY,
        )
        .await;
    assert_eq!(by_prefix.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(by_prefix.body["data"][0]["id"], id);
    // By prefix too.
    let third = server
        .post("/v1/tenants/acme/api-keys", ADMIN_KEY, json!({}))
        .await;
    let third_key = third.body["key"].as_str().expect("key");
    let third_prefix = third.body["prefix"].as_str().expect("prefix");
    assert_eq!(server.get("/v1/sources", third_key).await.status, 200);
    assert_eq!(
        server
            .delete(
                &format!("/v1/tenants/acme/api-keys/{third_prefix}"),
                ADMIN_KEY
            )
            .await
            .status,
        204
    );
    assert_eq!(server.get("/v1/sources", third_key).await.status, 401);
    // Deleting a tenant takes its keys with it.
    let other = server.tenant("beta").await;
    assert_eq!(
        server.delete("/v1/tenants/beta", ADMIN_KEY).await.status,
        204
    );
    assert_eq!(server.get("/v1/sources", &other).await.status, 401);
    server.cleanup().await;
}
both_backends!(api_keys_lifecycle);
