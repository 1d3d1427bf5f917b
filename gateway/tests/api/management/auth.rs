//! 401 without a usable key, 403 for the wrong kind of key, 404 across tenants, JSON errors for
//! unknown routes and methods.

use reqwest::Method;
use serde_json::json;

use super::{ADMIN_KEY, Backend, RUSTORE_KEY, Server, both_backends};

/// Every tenant route, with a body where it takes one.
pub fn tenant_routes() -> Vec<(Method, &'static str, Option<serde_json::Value>)> {
    vec![
        (
            Method::POST,
            "/v1/sources",
            Some(json!({"store": "autodesk"})),
        ),
        (Method::GET, "/v1/sources", None),
        (Method::GET, "/v1/sources/src_x", None),
        (Method::PATCH, "/v1/sources/src_x", Some(json!({}))),
        (
            Method::POST,
            "/v1/sources/src_x/rotate-key",
            Some(json!({"key": RUSTORE_KEY})),
        ),
        (Method::DELETE, "/v1/sources/src_x/previous-key", None),
        (
            Method::POST,
            "/v1/endpoints",
            Some(json!({"url": "https://example.com/hook"})),
        ),
        (Method::GET, "/v1/endpoints", None),
        (Method::GET, "/v1/endpoints/ep_x", None),
        (Method::PATCH, "/v1/endpoints/ep_x", Some(json!({}))),
        (Method::DELETE, "/v1/endpoints/ep_x", None),
        (
            Method::POST,
            "/v1/endpoints/ep_x/rotate-secret",
            Some(json!({})),
        ),
        (Method::POST, "/v1/endpoints/ep_x/ping", None),
        (Method::GET, "/v1/endpoints/ep_x/attempts", None),
        (Method::GET, "/v1/endpoints/ep_x/deliveries", None),
        (
            Method::POST,
            "/v1/endpoints/ep_x/recover",
            Some(json!({"since": "2026-01-01T00:00:00Z"})),
        ),
        (Method::GET, "/v1/events", None),
        (Method::GET, "/v1/events/ev_x", None),
        (Method::GET, "/v1/events/ev_x/deliveries", None),
        (Method::GET, "/v1/events/ev_x/attempts", None),
        (
            Method::POST,
            "/v1/events/ev_x/replay",
            Some(json!({"endpoint_id": "ep_x"})),
        ),
    ]
}

/// Every admin route.
pub fn admin_routes() -> Vec<(Method, &'static str, Option<serde_json::Value>)> {
    vec![
        (Method::POST, "/v1/tenants", Some(json!({"id": "zeta"}))),
        (Method::GET, "/v1/tenants", None),
        (Method::GET, "/v1/tenants/acme", None),
        (Method::DELETE, "/v1/tenants/acme", None),
        (Method::POST, "/v1/tenants/acme/api-keys", Some(json!({}))),
        (Method::GET, "/v1/tenants/acme/api-keys", None),
        (Method::DELETE, "/v1/tenants/acme/api-keys/key_x", None),
    ]
}

async fn keys_are_required(backend: Backend) {
    let server = Server::spawn(backend).await;
    let tenant_key = server.tenant("acme").await;
    let all: Vec<_> = tenant_routes().into_iter().chain(admin_routes()).collect();
    for (method, path, body) in &all {
        for key in [
            None,
            Some("wrong"),
            Some("sk_00000000_0000"),
            Some(&tenant_key[..tenant_key.len() - 1]),
        ] {
            let answer = server.call(method.clone(), path, key, body.clone()).await;
            assert_eq!(
                answer.status, 401,
                "{method} {path} with {key:?}: {}",
                answer.text
            );
            assert_eq!(answer.code(), "unauthorized");
            assert!(answer.body["error"]["message"].is_string());
        }
    }
    for (method, path, body) in tenant_routes() {
        let answer = server
            .call(method.clone(), path, Some(ADMIN_KEY), body)
            .await;
        assert_eq!(
            answer.status, 403,
            "admin key on {method} {path}: {}",
            answer.text
        );
        assert_eq!(answer.code(), "forbidden");
    }
    for (method, path, body) in admin_routes() {
        let answer = server
            .call(method.clone(), path, Some(&tenant_key), body)
            .await;
        assert_eq!(
            answer.status, 403,
            "tenant key on {method} {path}: {}",
            answer.text
        );
    }
    // A scheme other than Bearer.
    let basic = server
        .http
        .get(format!("{}/v1/sources", server.address))
        .header("Authorization", format!("Basic {tenant_key}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(basic.status(), 401);
    server.cleanup().await;
}
both_backends!(keys_are_required);

async fn admin_routes_are_off_without_an_admin_key(backend: Backend) {
    let server = Server::spawn_configured(backend, "", "").await;
    for key in ["", "anything-at-all-long-enough"] {
        let answer = server.post("/v1/tenants", key, json!({"id": "acme"})).await;
        assert_eq!(answer.status, 401, "{}", answer.text);
        assert_eq!(answer.code(), "unauthorized");
    }
    let answer = server
        .post(
            "/v1/tenants",
            "anything-at-all-long-enough",
            json!({"id": "acme"}),
        )
        .await;
    assert!(answer.text.contains("api.admin_key"), "{}", answer.text);
    server.cleanup().await;
}
both_backends!(admin_routes_are_off_without_an_admin_key);

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let server = Server::spawn(backend).await;
    let key = server.tenant("acme").await;
    let unknown = server.get("/v1/nothing-here", &key).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.code(), "not_found");
    let method = server
        .call(Method::PUT, "/v1/sources", Some(&key), None)
        .await;
    assert_eq!(method.status, 405, "{}", method.text);
    assert_eq!(method.code(), "method_not_allowed");
    let unreadable = server
        .http
        .post(format!("{}/v1/endpoints", server.address))
        .header("Authorization", format!("Bearer {key}"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("an answer");
    assert_eq!(unreadable.status(), 400);
    let body: serde_json::Value =
        serde_json::from_str(&unreadable.text().await.expect("a body")).expect("JSON");
    assert_eq!(body["error"]["code"], "invalid");
    let missing_field = server.post("/v1/endpoints", &key, json!({})).await;
    assert_eq!(missing_field.status, 400);
    assert_eq!(missing_field.field(), Some("url"));
    server.cleanup().await;
}
both_backends!(unknown_routes_and_methods_answer_json);

async fn tenants_see_only_their_own(backend: Backend) {
    let server = Server::spawn_with(
        backend,
        "[forward]\nallow_private_targets = true\nallow_http = true\n",
    )
    .await;
    let acme = server.tenant("acme").await;
    let beta = server.tenant("beta").await;
    let source = server
        .post(
            "/v1/sources",
            &acme,
            json!({"store": "rustore", "key": RUSTORE_KEY}),
        )
        .await;
    assert_eq!(source.status, 201, "{}", source.text);
    let source_id = source.body["id"].as_str().expect("id").to_owned();
    let endpoint = server
        .post(
            "/v1/endpoints",
            &acme,
            json!({"url": "https://example.com/hook"}),
        )
        .await;
    assert_eq!(endpoint.status, 201, "{}", endpoint.text);
    let endpoint_id = endpoint.body["id"].as_str().expect("id").to_owned();
    let event_id = super::events::insert_event(
        &server,
        "acme",
        &source_id,
        "subscription.renewed",
        "production",
        1_000,
    )
    .await;

    let routes = vec![
        (Method::GET, format!("/v1/sources/{source_id}"), None),
        (
            Method::PATCH,
            format!("/v1/sources/{source_id}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::POST,
            format!("/v1/sources/{source_id}/rotate-key"),
            Some(json!({"key": RUSTORE_KEY})),
        ),
        (
            Method::DELETE,
            format!("/v1/sources/{source_id}/previous-key"),
            None,
        ),
        (Method::GET, format!("/v1/endpoints/{endpoint_id}"), None),
        (
            Method::PATCH,
            format!("/v1/endpoints/{endpoint_id}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::POST,
            format!("/v1/endpoints/{endpoint_id}/rotate-secret"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/endpoints/{endpoint_id}/ping"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/endpoints/{endpoint_id}/attempts"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/endpoints/{endpoint_id}/recover"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (Method::GET, format!("/v1/events/{event_id}"), None),
        (
            Method::GET,
            format!("/v1/events/{event_id}/deliveries"),
            None,
        ),
        (Method::GET, format!("/v1/events/{event_id}/attempts"), None),
        (
            Method::POST,
            format!("/v1/events/{event_id}/replay"),
            Some(json!({"endpoint_id": endpoint_id})),
        ),
        (Method::DELETE, format!("/v1/endpoints/{endpoint_id}"), None),
    ];
    for (method, path, body) in &routes {
        let answer = server
            .call(method.clone(), path, Some(&beta), body.clone())
            .await;
        assert_eq!(
            answer.status, 404,
            "beta on {method} {path}: {}",
            answer.text
        );
        assert_eq!(answer.code(), "not_found");
    }
    for list in ["/v1/sources", "/v1/endpoints", "/v1/events"] {
        let answer = server.get(list, &beta).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.body["data"].as_array().map(Vec::len),
            Some(0),
            "{list}"
        );
        let own = server.get(list, &acme).await;
        assert_eq!(own.body["data"].as_array().map(Vec::len), Some(1), "{list}");
    }
    // Replaying acme's event to beta's endpoint, or beta's... acme cannot name beta's endpoint.
    let beta_endpoint = server
        .post(
            "/v1/endpoints",
            &beta,
            json!({"url": "https://example.com/other"}),
        )
        .await;
    let beta_endpoint_id = beta_endpoint.body["id"].as_str().expect("id");
    let cross = server
        .post(
            &format!("/v1/events/{event_id}/replay"),
            &acme,
            json!({"endpoint_id": beta_endpoint_id}),
        )
        .await;
    assert_eq!(cross.status, 404);
    assert_eq!(cross.field(), Some("endpoint_id"));
    server.cleanup().await;
}
both_backends!(tenants_see_only_their_own);
