//! Events: filters, pagination, one event with its notification and deliveries; attempts.

use serde_json::json;

use super::{Backend, RUSTORE_KEY, Server, both_backends};

/// Store an event (and its notification) as the ledger writer would; its id. `at` is the
/// creation time in ms.
pub async fn insert_event(
    server: &Server,
    tenant: &str,
    source: &str,
    event_type: &str,
    environment: &str,
    at: i64,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let notification = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO notifications (id, tenant_id, source_id, store, received_at, status, body) \
         VALUES ($1, $2, $3, 'rustore', $4, 'accepted', $5)",
    )
    .bind(notification.as_str())
    .bind(tenant)
    .bind(source)
    .bind(at)
    .bind(br#"{"id":"raw-notification"}"#.to_vec())
    .execute(&server.pool)
    .await
    .expect("a notification");
    let payload =
        json!({"id": id, "type": event_type, "tenant": tenant, "environment": environment});
    sqlx::query(
        "INSERT INTO events (id, notification_id, tenant_id, source_id, event_type, routing_key, \
         payload, created_at, published_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)",
    )
    .bind(id.as_str())
    .bind(notification.as_str())
    .bind(tenant)
    .bind(source)
    .bind(event_type)
    .bind(format!("{tenant}.rustore.{environment}.{event_type}"))
    .bind(payload.to_string())
    .bind(at)
    .execute(&server.pool)
    .await
    .expect("an event");
    id
}

/// Record an attempt as the forwarder would.
pub async fn insert_attempt(
    server: &Server,
    tenant: &str,
    event: &str,
    endpoint: &str,
    attempt: i64,
    at: i64,
    outcome: &str,
) {
    sqlx::query(
        "INSERT INTO delivery_attempts (id, event_id, endpoint_id, tenant_id, attempt, \
         attempted_at, status_code, error, latency_ms, response_body, outcome, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, 12, $8, $9, NULL)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(event)
    .bind(endpoint)
    .bind(tenant)
    .bind(attempt)
    .bind(at)
    .bind(if outcome == "delivered" {
        200_i64
    } else {
        500_i64
    })
    .bind(b"ok".to_vec())
    .bind(outcome)
    .execute(&server.pool)
    .await
    .expect("an attempt");
}

fn ids(answer: &super::Answer) -> Vec<String> {
    answer.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn events_filter_and_paginate(backend: Backend) {
    let server = Server::spawn(backend).await;
    let key = server.tenant("acme").await;
    let source = server
        .post(
            "/v1/sources",
            &key,
            json!({"store": "rustore", "key": RUSTORE_KEY}),
        )
        .await;
    let source = source.body["id"].as_str().expect("id").to_owned();
    // 2026-01-01T00:00:00Z and on, one minute apart.
    let base = 1_767_225_600_000_i64;
    let mut all = Vec::new();
    for (i, (event_type, environment)) in [
        ("subscription.renewed", "production"),
        ("subscription.canceled", "sandbox"),
        ("transaction.succeeded", "production"),
        ("subscription.renewed", "sandbox"),
        ("transaction.refunded", "production"),
    ]
    .iter()
    .enumerate()
    {
        let at = base + 60_000 * i as i64;
        all.push(insert_event(&server, "acme", &source, event_type, environment, at).await);
    }
    all.reverse(); // newest first

    let listed = server.get("/v1/events", &key).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(ids(&listed), all);
    assert_eq!(listed.body["data"][0]["type"], "transaction.refunded");
    assert_eq!(listed.body["data"][0]["store"], "rustore");
    assert_eq!(listed.body["data"][0]["environment"], "production");

    // Pages of two.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/v1/events?limit=2&cursor={c}"),
            None => "/v1/events?limit=2".to_owned(),
        };
        let page = server.get(&path, &key).await;
        seen.extend(ids(&page));
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, all);

    let renewed = server
        .get("/v1/events?type=subscription.renewed", &key)
        .await;
    assert_eq!(ids(&renewed), [all[1].clone(), all[4].clone()]);
    let subscriptions = server.get("/v1/events?type=subscription.*", &key).await;
    assert_eq!(ids(&subscriptions).len(), 3);
    let sandbox = server.get("/v1/events?environment=sandbox", &key).await;
    assert_eq!(ids(&sandbox), [all[1].clone(), all[3].clone()]);
    let store = server
        .get("/v1/events?store=rustore&environment=production", &key)
        .await;
    assert_eq!(ids(&store).len(), 3);
    let autodesk = server.get("/v1/events?store=autodesk", &key).await;
    assert!(ids(&autodesk).is_empty());
    let range = server
        .get(
            "/v1/events?since=2026-01-01T00:01:00Z&until=2026-01-01T00:03:00Z",
            &key,
        )
        .await;
    assert_eq!(ids(&range), [all[2].clone(), all[3].clone()]);

    for (query, field) in [
        ("type=subscription.renewd", "type"),
        ("store=appstore", "store"),
        ("environment=test", "environment"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("limit=101", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
    ] {
        let answer = server.get(&format!("/v1/events?{query}"), &key).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        assert_eq!(answer.field(), Some(field), "{query}");
    }
    server.cleanup().await;
}
both_backends!(events_filter_and_paginate);

async fn an_event_with_its_notification_and_deliveries(backend: Backend) {
    let server = Server::spawn(backend).await;
    let key = server.tenant("acme").await;
    let event = insert_event(
        &server,
        "acme",
        "src_a",
        "subscription.renewed",
        "production",
        5_000,
    )
    .await;
    let detail = server.get(&format!("/v1/events/{event}"), &key).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert_eq!(detail.body["payload"]["type"], "subscription.renewed");
    assert_eq!(
        detail.body["notification"]["body"],
        r#"{"id":"raw-notification"}"#
    );
    assert_eq!(detail.body["notification"]["body_encoding"], "utf8");
    assert_eq!(detail.body["deliveries"], json!([]));

    insert_attempt(&server, "acme", &event, "ep_a", 1, 6_000, "retrying").await;
    insert_attempt(&server, "acme", &event, "ep_a", 2, 7_000, "delivered").await;
    insert_attempt(&server, "acme", &event, "ep_b", 1, 6_500, "dead").await;
    let detail = server.get(&format!("/v1/events/{event}"), &key).await;
    let deliveries = detail.body["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0]["endpoint_id"], "ep_a");
    assert_eq!(deliveries[0]["status"], "delivered");
    assert_eq!(deliveries[0]["attempts"], 2);
    assert_eq!(deliveries[1]["status"], "dead");
    let listed = server
        .get(&format!("/v1/events/{event}/deliveries"), &key)
        .await;
    assert_eq!(listed.body["data"], detail.body["deliveries"]);

    let attempts = server
        .get(&format!("/v1/events/{event}/attempts"), &key)
        .await;
    assert_eq!(attempts.status, 200);
    let data = attempts.body["data"].as_array().expect("data");
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["attempt"], 2); // newest first
    assert_eq!(data[0]["response_body"], "ok");
    let dead = server
        .get(&format!("/v1/events/{event}/attempts?outcome=dead"), &key)
        .await;
    assert_eq!(dead.body["data"].as_array().map(Vec::len), Some(1));
    let bad = server
        .get(&format!("/v1/events/{event}/attempts?outcome=lost"), &key)
        .await;
    assert_eq!(bad.field(), Some("outcome"));
    assert_eq!(server.get("/v1/events/nope", &key).await.status, 404);
    server.cleanup().await;
}
both_backends!(an_event_with_its_notification_and_deliveries);
