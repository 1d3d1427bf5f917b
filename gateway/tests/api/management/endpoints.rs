//! Endpoints: register (secret once), validation (scheme, SSRF, types), update, rotate the
//! secret with an overlap, delete; attempts per endpoint.

use serde_json::json;

use super::{Backend, Server, both_backends};

async fn endpoints_lifecycle(backend: Backend) {
    let server = Server::spawn(backend).await;
    let key = server.tenant("acme").await;
    let created = server
        .post(
            "/v1/endpoints",
            &key,
            json!({"url": "https://example.com/hook", "event_types": ["subscription.*"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.body["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"));
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("ep_"));
    assert_eq!(created.body["event_types"], json!(["subscription.*"]));
    assert_eq!(created.body["enabled"], true);

    // The forwarder reads the same row: the secret signs.
    let stored: String = sqlx::query_scalar("SELECT secrets FROM endpoints WHERE id = $1")
        .bind(id.as_str())
        .fetch_one(&server.pool)
        .await
        .expect("the endpoint");
    assert!(stored.contains(secret));

    for (body, field) in [
        (json!({"url": "ftp://example.com/x"}), "url"),
        (json!({"url": "http://example.com/x"}), "url"),
        (json!({"url": "https://127.0.0.1/x"}), "url"),
        (json!({"url": "https://169.254.169.254/latest"}), "url"),
        (json!({"url": "https://[::1]/x"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": "https://example.com/x", "event_types": ["subscription.*", "nope"]}),
            "event_types[1]",
        ),
        (json!({"url": "https://example.com/x", "id": "UPPER"}), "id"),
    ] {
        let answer = server.post("/v1/endpoints", &key, body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(answer.field(), Some(field), "{body}");
    }

    let got = server.get(&format!("/v1/endpoints/{id}"), &key).await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("secret").is_none());
    assert!(got.body["previous_secret_expires_at"].is_null());

    let updated = server
        .patch(
            &format!("/v1/endpoints/{id}"),
            &key,
            json!({"url": "https://example.org/new", "event_types": [], "enabled": false}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["url"], "https://example.org/new");
    assert_eq!(updated.body["enabled"], false);
    let bad = server
        .patch(
            &format!("/v1/endpoints/{id}"),
            &key,
            json!({"url": "https://10.0.0.1/"}),
        )
        .await;
    assert_eq!(bad.field(), Some("url"));

    // Rotation: both secrets stored, the old one expiring after the overlap.
    let rotate = format!("/v1/endpoints/{id}/rotate-secret");
    let rotated = server
        .post(&rotate, &key, json!({"overlap_seconds": 3600}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.body["secret"].as_str().expect("secret");
    assert_ne!(new_secret, secret);
    assert!(!rotated.body["previous_secret_expires_at"].is_null());
    let stored: String = sqlx::query_scalar("SELECT secrets FROM endpoints WHERE id = $1")
        .bind(id.as_str())
        .fetch_one(&server.pool)
        .await
        .expect("the endpoint");
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(stored[0]["secret"], new_secret);
    assert!(stored[0]["expires_at"].is_null());
    assert_eq!(stored[1]["secret"], secret);
    let expires = stored[1]["expires_at"].as_i64().expect("an expiry");
    let now = chrono::Utc::now().timestamp_millis();
    assert!((now + 3_500_000..=now + 3_700_000).contains(&expires));
    let too_long = server
        .post(&rotate, &key, json!({"overlap_seconds": 99_999_999}))
        .await;
    assert_eq!(too_long.field(), Some("overlap_seconds"));
    let unreadable = server.post(&rotate, &key, json!({"overlap": 10})).await;
    assert_eq!(unreadable.status, 400);
    assert_eq!(unreadable.field(), Some("overlap"));
    // Without an overlap the old secrets stop at once.
    let immediate = server
        .post(&rotate, &key, json!({"overlap_seconds": 0}))
        .await;
    assert_eq!(immediate.status, 200);
    assert!(immediate.body["previous_secret_expires_at"].is_null());

    // Pagination and delete.
    for _ in 0..2 {
        let more = server
            .post(
                "/v1/endpoints",
                &key,
                json!({"url": "https://example.com/more"}),
            )
            .await;
        assert_eq!(more.status, 201);
    }
    let page = server.get("/v1/endpoints?limit=2", &key).await;
    assert_eq!(page.body["data"].as_array().map(Vec::len), Some(2));
    let cursor = page.body["next_cursor"].as_str().expect("a next page");
    let rest = server
        .get(&format!("/v1/endpoints?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(rest.body["data"].as_array().map(Vec::len), Some(1));

    super::events::insert_attempt(&server, "acme", "ev-1", &id, 1, 1_000, "dead").await;
    super::events::insert_attempt(&server, "acme", "ev-2", &id, 1, 2_000, "delivered").await;
    let attempts = server
        .get(&format!("/v1/endpoints/{id}/attempts"), &key)
        .await;
    assert_eq!(attempts.status, 200, "{}", attempts.text);
    assert_eq!(attempts.body["data"][0]["event_id"], "ev-2");
    let dead = server
        .get(
            &format!("/v1/endpoints/{id}/attempts?outcome=dead&limit=1"),
            &key,
        )
        .await;
    assert_eq!(dead.body["data"][0]["event_id"], "ev-1");
    assert!(dead.body["next_cursor"].is_null());
    // ev-1 is retried and then delivered: its delivery's status follows its latest attempt.
    super::events::insert_attempt(&server, "acme", "ev-1", &id, 2, 3_000, "retrying").await;
    super::events::insert_attempt(&server, "acme", "ev-3", &id, 1, 2_500, "dead").await;
    let deliveries = server
        .get(&format!("/v1/endpoints/{id}/deliveries"), &key)
        .await;
    assert_eq!(deliveries.status, 200, "{}", deliveries.text);
    let data = deliveries.body["data"].as_array().expect("data");
    let summary: Vec<(&str, &str, i64)> = data
        .iter()
        .map(|d| {
            (
                d["event_id"].as_str().expect("event"),
                d["status"].as_str().expect("status"),
                d["attempts"].as_i64().expect("attempts"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ev-1", "retrying", 2),
            ("ev-3", "dead", 1),
            ("ev-2", "delivered", 1)
        ]
    );
    let dead_now = server
        .get(&format!("/v1/endpoints/{id}/deliveries?status=dead"), &key)
        .await;
    assert_eq!(dead_now.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(dead_now.body["data"][0]["event_id"], "ev-3");
    let first = server
        .get(&format!("/v1/endpoints/{id}/deliveries?limit=2"), &key)
        .await;
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let rest = server
        .get(
            &format!("/v1/endpoints/{id}/deliveries?limit=2&cursor={cursor}"),
            &key,
        )
        .await;
    assert_eq!(rest.body["data"][0]["event_id"], "ev-2");
    assert!(rest.body["next_cursor"].is_null());
    let bad = server
        .get(&format!("/v1/endpoints/{id}/deliveries?status=lost"), &key)
        .await;
    assert_eq!(bad.field(), Some("status"));

    // A disabled endpoint takes no ping, replay or recovery.
    let disabled = server
        .call(
            reqwest::Method::POST,
            &format!("/v1/endpoints/{id}/ping"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(disabled.status, 409, "{}", disabled.text);
    assert_eq!(disabled.field(), Some("enabled"));
    let recover_disabled = server
        .post(
            &format!("/v1/endpoints/{id}/recover"),
            &key,
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(recover_disabled.status, 409);
    let enabled = server
        .patch(
            &format!("/v1/endpoints/{id}"),
            &key,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(enabled.body["enabled"], true);

    // Without a broker, ping and recovery answer 503 (nothing is lost: nothing was queued).
    let ping = server
        .call(
            reqwest::Method::POST,
            &format!("/v1/endpoints/{id}/ping"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(ping.status, 503, "{}", ping.text);
    assert_eq!(ping.code(), "unavailable");
    let recover_bad = server
        .post(
            &format!("/v1/endpoints/{id}/recover"),
            &key,
            json!({"since": "then"}),
        )
        .await;
    assert_eq!(recover_bad.field(), Some("since"));

    assert_eq!(
        server
            .delete(&format!("/v1/endpoints/{id}"), &key)
            .await
            .status,
        204
    );
    assert_eq!(
        server
            .get(&format!("/v1/endpoints/{id}"), &key)
            .await
            .status,
        404
    );
    server.cleanup().await;
}
both_backends!(endpoints_lifecycle);

async fn private_targets_when_allowed(backend: Backend) {
    let server = Server::spawn_with(
        backend,
        "[forward]\nallow_private_targets = true\nallow_http = true\n",
    )
    .await;
    let key = server.tenant("acme").await;
    let created = server
        .post(
            "/v1/endpoints",
            &key,
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    server.cleanup().await;
}
both_backends!(private_targets_when_allowed);
