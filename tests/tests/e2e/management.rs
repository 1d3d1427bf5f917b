//! The management API end to end: a tenant, a RuStore source and an endpoint made through `/v1`,
//! a notification posted to the ingest URL it gave, the signed webhook received, its attempt
//! listed; `test.ping`, secret rotation (both signatures during the overlap), replay of one event
//! and recovery of a dead delivery, all through the forwarder and real RabbitMQ.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use storehook_tests::app::Backend;
use storehook_tests::forwarding::{ForwardApp, ForwardConfig};
use storehook_tests::receiver::{Received, Receiver, Reply};
use storehook_tests::stores::{
    RUSTORE_APP_ID, RUSTORE_KEY, rustore_envelope, rustore_invoice, rustore_key_base64,
};

const WAIT: Duration = Duration::from_secs(30);
const ADMIN_KEY: &str = "e2e-admin-key-0123456789";

fn verifies(secret: &str, received: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .and_then(|webhook| webhook.verify(&received.body, &received.headers))
        .is_ok()
}

struct Api {
    http: reqwest::Client,
    address: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.address))
            .header("Authorization", format!("Bearer {key}"));
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("storehook answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Value {
        let (status, body) = self.call(Method::POST, path, key, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {body}");
        body
    }

    async fn get(&self, path: &str, key: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, key, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Poll a list until it holds `count` items (bounded): the attempt log is written by the
    /// forwarder after the receiver has answered.
    async fn wait_for_list(&self, path: &str, key: &str, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let body = self.get(path, key).await;
            let data = body["data"].as_array().cloned().unwrap_or_default();
            if data.len() >= count || tokio::time::Instant::now() >= deadline {
                return data;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn onboard_through_the_api_and_receive_a_signed_webhook_on_sqlite() {
    onboard(Backend::Sqlite).await;
}

#[tokio::test]
async fn onboard_through_the_api_and_receive_a_signed_webhook_on_postgres() {
    onboard(Backend::Postgres).await;
}

async fn onboard(backend: Backend) {
    // `/down` fails its first two requests (the initial attempt and the one retry), then answers.
    let receiver = Receiver::start(|path, n| {
        if path == "/down" && n < 2 {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    })
    .await;
    let mut config = ForwardConfig::new(
        Vec::new(),
        // One retry 100 ms after the first attempt, then dead. The [api] table follows [forward].
        &format!(
            "retries = 1\nfirst_delay = \"100ms\"\nwindow = \"100ms\"\n\n[api]\nadmin_key = \"{ADMIN_KEY}\""
        ),
    );
    config.ingest = true;
    let app = ForwardApp::spawn_with(config, backend).await;
    let api = Api {
        http: reqwest::Client::new(),
        address: app.address.clone(),
    };
    let started = chrono::Utc::now().to_rfc3339();

    // Admin: a tenant and its key.
    api.post(
        "/v1/tenants",
        ADMIN_KEY,
        json!({"id": "shop", "name": "Shop"}),
    )
    .await;
    let key = api
        .post(
            "/v1/tenants/shop/api-keys",
            ADMIN_KEY,
            json!({"name": "e2e"}),
        )
        .await["key"]
        .as_str()
        .expect("a key")
        .to_owned();

    // Tenant: a RuStore source and an endpoint.
    let source = api
        .post(
            "/v1/sources",
            &key,
            json!({"store": "rustore", "key": rustore_key_base64(&RUSTORE_KEY), "app_id": RUSTORE_APP_ID}),
        )
        .await;
    let ingest_url = source["ingest_url"]
        .as_str()
        .expect("an ingest URL")
        .to_owned();
    assert!(
        ingest_url.starts_with(&format!("{}/ingest/rustore/", app.address)),
        "{ingest_url}"
    );
    let endpoint = api
        .post("/v1/endpoints", &key, json!({"url": receiver.url("/hook")}))
        .await;
    let endpoint_id = endpoint["id"].as_str().expect("id").to_owned();
    let secret = endpoint["secret"].as_str().expect("a secret").to_owned();
    let down = api
        .post(
            "/v1/endpoints",
            &key,
            json!({"url": receiver.url("/down"), "event_types": ["transaction.*"]}),
        )
        .await;
    let down_id = down["id"].as_str().expect("id").to_owned();

    // The store posts to the ingest URL; the webhook arrives signed.
    let notification = rustore_envelope(
        &RUSTORE_KEY,
        "n-1",
        &rustore_invoice("inv-1", "CONFIRMED", false),
    );
    let posted = api
        .http
        .post(&ingest_url)
        .body(notification)
        .send()
        .await
        .expect("ingest answers");
    assert_eq!(posted.status(), 200);
    let received = receiver.wait_for("/hook", 1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert!(verifies(&secret, &received[0]));
    let webhook: Value = serde_json::from_slice(&received[0].body).expect("JSON");
    assert_eq!(webhook["type"], "transaction.succeeded");
    assert_eq!(webhook["tenant"], "shop");
    let event_id = webhook["id"].as_str().expect("id").to_owned();

    let attempts = api
        .wait_for_list(&format!("/v1/endpoints/{endpoint_id}/attempts"), &key, 1)
        .await;
    assert_eq!(attempts[0]["event_id"], event_id.as_str());
    assert_eq!(attempts[0]["outcome"], "delivered");
    assert_eq!(attempts[0]["status_code"], 200);
    let events = api.get("/v1/events", &key).await;
    assert_eq!(events["data"][0]["id"], event_id.as_str());
    let detail = api.get(&format!("/v1/events/{event_id}"), &key).await;
    let to_hook = detail["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|d| d["endpoint_id"] == endpoint_id.as_str())
        .cloned()
        .expect("a delivery to /hook");
    assert_eq!(to_hook["status"], "delivered");
    assert_eq!(detail["payload"]["id"], event_id.as_str());
    assert!(
        detail["notification"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("n-1"))
    );

    // test.ping through the forwarder.
    let ping = api
        .post(
            &format!("/v1/endpoints/{endpoint_id}/ping"),
            &key,
            json!({}),
        )
        .await;
    let received = receiver.wait_for("/hook", 2, WAIT).await;
    let body: Value = serde_json::from_slice(&received[1].body).expect("JSON");
    assert_eq!(body["type"], "test.ping");
    assert_eq!(body["id"], ping["event_id"]);
    assert!(verifies(&secret, &received[1]));

    // Rotation: once the forwarder has read the endpoint again, webhooks carry both signatures.
    let rotated = api
        .post(
            &format!("/v1/endpoints/{endpoint_id}/rotate-secret"),
            &key,
            json!({}),
        )
        .await;
    let new_secret = rotated["secret"].as_str().expect("a secret").to_owned();
    let mut seen = received.len();

    let both = loop {
        api.post(
            &format!("/v1/endpoints/{endpoint_id}/ping"),
            &key,
            json!({}),
        )
        .await;
        seen += 1;
        let received = receiver.wait_for("/hook", seen, WAIT).await;
        assert_eq!(received.len(), seen, "the ping arrived");
        let last = received[seen - 1].clone();
        if verifies(&new_secret, &last) {
            break last;
        }
        assert!(seen < 100, "the rotated secret never signed");
    };
    assert!(
        verifies(&secret, &both),
        "the old secret signs during the overlap"
    );

    // Replay the event to the endpoint: the same webhook-id again.
    api.post(
        &format!("/v1/events/{event_id}/replay"),
        &key,
        json!({"endpoint_id": endpoint_id}),
    )
    .await;
    seen += 1;
    let received = receiver.wait_for("/hook", seen, WAIT).await;
    assert_eq!(
        received[seen - 1].header("webhook-id"),
        Some(event_id.as_str())
    );

    // The same event died at `/down` (two failures, one retry); recover it.
    let dead = api
        .wait_for_list(
            &format!("/v1/endpoints/{down_id}/attempts?outcome=dead"),
            &key,
            1,
        )
        .await;
    assert_eq!(dead.len(), 1);
    let dead_event = dead[0]["event_id"].as_str().expect("id").to_owned();
    assert_eq!(dead_event, event_id);
    assert_eq!(receiver.received("/down").len(), 2);
    let recovered = api
        .post(
            &format!("/v1/endpoints/{down_id}/recover"),
            &key,
            json!({"since": started}),
        )
        .await;
    assert_eq!(recovered["replayed"], 1);
    let down_received = receiver.wait_for("/down", 3, WAIT).await;
    assert_eq!(down_received.len(), 3);
    assert_eq!(
        down_received[2].header("webhook-id"),
        Some(dead_event.as_str())
    );
    let delivered = api
        .wait_for_list(
            &format!("/v1/endpoints/{down_id}/attempts?outcome=delivered"),
            &key,
            1,
        )
        .await;
    assert_eq!(delivered[0]["event_id"], dead_event.as_str());
    let detail = api.get(&format!("/v1/events/{dead_event}"), &key).await;
    let to_down = detail["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|d| d["endpoint_id"] == down_id.as_str())
        .cloned()
        .expect("a delivery to /down");
    assert_eq!(to_down["status"], "delivered");
    // Nothing left to recover.
    let again = api
        .post(
            &format!("/v1/endpoints/{down_id}/recover"),
            &key,
            json!({"since": started}),
        )
        .await;
    assert_eq!(again["replayed"], 0);
    app.cleanup().await;
}
