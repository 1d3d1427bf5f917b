//! Walk every route and check that no answer contains a secret (API key, ingest key, RuStore
//! key, signing secret, admin key), except the one answer that creates it.

use reqwest::Method;
use serde_json::json;

use super::{ADMIN_KEY, Backend, OTHER_RUSTORE_KEY, RUSTORE_KEY, Server, both_backends};

async fn no_answer_holds_a_secret(backend: Backend) {
    let server = Server::spawn(backend).await;
    // (secret, the request whose answer may hold it)
    let mut secrets: Vec<(String, Option<usize>)> = vec![
        (ADMIN_KEY.to_owned(), None),
        (RUSTORE_KEY.to_owned(), None),
        (OTHER_RUSTORE_KEY.to_owned(), None),
    ];
    let created_at = |server: &Server| server.log.lock().expect("log").len() - 1;

    server
        .post("/v1/tenants", ADMIN_KEY, json!({"id": "acme"}))
        .await;
    let api_key = server
        .post(
            "/v1/tenants/acme/api-keys",
            ADMIN_KEY,
            json!({"name": "ci"}),
        )
        .await;
    let key = api_key.body["key"].as_str().expect("key").to_owned();
    secrets.push((key.clone(), Some(created_at(&server))));

    let rustore = server
        .post(
            "/v1/sources",
            &key,
            json!({"id": "acme-rustore", "store": "rustore", "key": RUSTORE_KEY}),
        )
        .await;
    let ingest_key = rustore.body["ingest_key"]
        .as_str()
        .expect("ingest key")
        .to_owned();
    secrets.push((ingest_key, Some(created_at(&server))));
    let autodesk = server
        .post(
            "/v1/sources",
            &key,
            json!({"id": "acme-autodesk", "store": "autodesk", "receiver_emails": ["p@x.com"]}),
        )
        .await;
    let ingest_key = autodesk.body["ingest_key"]
        .as_str()
        .expect("ingest key")
        .to_owned();
    secrets.push((ingest_key, Some(created_at(&server))));
    let endpoint = server
        .post(
            "/v1/endpoints",
            &key,
            json!({"id": "hook", "url": "https://example.com/hook"}),
        )
        .await;
    let secret = endpoint.body["secret"].as_str().expect("secret").to_owned();
    secrets.push((secret, Some(created_at(&server))));
    let rotated = server
        .post("/v1/endpoints/hook/rotate-secret", &key, json!({}))
        .await;
    let secret = rotated.body["secret"].as_str().expect("secret").to_owned();
    secrets.push((secret, Some(created_at(&server))));
    server
        .post(
            "/v1/sources/acme-rustore/rotate-key",
            &key,
            json!({"key": OTHER_RUSTORE_KEY}),
        )
        .await;
    let event = super::events::insert_event(
        &server,
        "acme",
        "acme-rustore",
        "subscription.renewed",
        "production",
        1_000,
    )
    .await;
    super::events::insert_attempt(&server, "acme", &event, "hook", 1, 2_000, "dead").await;

    let reads = [
        (Method::GET, "/v1/tenants".to_owned(), ADMIN_KEY),
        (Method::GET, "/v1/tenants/acme".to_owned(), ADMIN_KEY),
        (
            Method::GET,
            "/v1/tenants/acme/api-keys".to_owned(),
            ADMIN_KEY,
        ),
        (Method::GET, "/v1/sources".to_owned(), &key),
        (Method::GET, "/v1/sources/acme-rustore".to_owned(), &key),
        (Method::GET, "/v1/sources/acme-autodesk".to_owned(), &key),
        (Method::PATCH, "/v1/sources/acme-rustore".to_owned(), &key),
        (Method::PATCH, "/v1/sources/acme-autodesk".to_owned(), &key),
        (
            Method::DELETE,
            "/v1/sources/acme-rustore/previous-key".to_owned(),
            &key,
        ),
        (Method::GET, "/v1/endpoints".to_owned(), &key),
        (Method::GET, "/v1/endpoints/hook".to_owned(), &key),
        (Method::PATCH, "/v1/endpoints/hook".to_owned(), &key),
        (Method::POST, "/v1/endpoints/hook/ping".to_owned(), &key),
        (Method::GET, "/v1/endpoints/hook/attempts".to_owned(), &key),
        (
            Method::GET,
            "/v1/endpoints/hook/deliveries".to_owned(),
            &key,
        ),
        (Method::GET, "/v1/events".to_owned(), &key),
        (Method::GET, format!("/v1/events/{event}"), &key),
        (Method::GET, format!("/v1/events/{event}/deliveries"), &key),
        (Method::GET, format!("/v1/events/{event}/attempts"), &key),
        (Method::GET, "/openapi.json".to_owned(), &key),
        (Method::GET, "/v1/unknown".to_owned(), &key),
    ];
    for (method, path, bearer) in reads {
        let body = (method == Method::PATCH).then(|| json!({}));
        let answer = server.call(method.clone(), &path, Some(bearer), body).await;
        assert!(
            answer.status < 500 || answer.status == 503,
            "{method} {path}: {}",
            answer.text
        );
    }
    for (method, path, body) in super::auth::tenant_routes()
        .into_iter()
        .chain(super::auth::admin_routes())
    {
        for bearer in [None, Some(ADMIN_KEY), Some(key.as_str())] {
            server
                .call(method.clone(), path, bearer, body.clone())
                .await;
        }
    }
    server
        .post(
            "/v1/endpoints/hook/recover",
            &key,
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    server
        .post(
            &format!("/v1/events/{event}/replay"),
            &key,
            json!({"endpoint_id": "hook"}),
        )
        .await;
    server
        .post("/v1/tenants/acme/api-keys", ADMIN_KEY, json!({}))
        .await;

    let log = server.log.lock().expect("log").clone();
    assert!(log.len() > 80, "the walk made {} calls", log.len());
    for (secret, creator) in &secrets {
        for (i, (request, answer)) in log.iter().enumerate() {
            if Some(i) == *creator {
                assert!(
                    answer.contains(secret.as_str()),
                    "{request} should hold its secret"
                );
                continue;
            }
            assert!(
                !answer.contains(secret.as_str()),
                "{request} answered a secret: {answer}"
            );
        }
    }
    server.cleanup().await;
}
both_backends!(no_answer_holds_a_secret);
