//! Sources: create (ingest URL), list, get, update allow-lists, disable, rotate the RuStore key.

use serde_json::json;

use super::{Backend, OTHER_RUSTORE_KEY, RUSTORE_KEY, Server, both_backends};

async fn sources_lifecycle(backend: Backend) {
    let server = Server::spawn(backend).await;
    let key = server.tenant("acme").await;
    let created = server
        .post(
            "/v1/sources",
            &key,
            json!({"id": "acme-rustore", "store": "rustore", "key": RUSTORE_KEY, "app_id": 12345}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let ingest_key = created.body["ingest_key"].as_str().expect("ingest_key");
    assert_eq!(
        created.body["ingest_url"],
        format!("https://hooks.example.com/ingest/rustore/{ingest_key}")
    );
    assert_eq!(created.body["rustore"]["app_id"], "12345");
    assert_eq!(created.body["rustore"]["has_previous_key"], false);
    assert!(created.body.get("key").is_none());

    // The ingest URL reaches ingest: an unreadable body is a known source's 400, not a 404.
    assert_eq!(server.ingest_garbage("rustore", ingest_key).await, 400);

    let autodesk = server
        .post(
            "/v1/sources",
            &key,
            json!({"store": "autodesk", "receiver_emails": ["pay@example.com"]}),
        )
        .await;
    assert_eq!(autodesk.status, 201, "{}", autodesk.text);
    assert!(
        autodesk.body["id"]
            .as_str()
            .expect("id")
            .starts_with("src_")
    );
    assert_eq!(
        autodesk.body["autodesk"]["receiver_emails"],
        json!(["pay@example.com"])
    );

    let listed = server.get("/v1/sources?limit=1", &key).await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    let cursor = listed.body["next_cursor"].as_str().expect("a second page");
    let second = server
        .get(&format!("/v1/sources?limit=1&cursor={cursor}"), &key)
        .await;
    assert_eq!(second.body["data"].as_array().map(Vec::len), Some(1));
    assert!(second.body["next_cursor"].is_null());

    // Validation names the field.
    for (body, field) in [
        (json!({"store": "appstore"}), "store"),
        (json!({"store": "rustore"}), "key"),
        (json!({"store": "rustore", "key": "c2hvcnQ="}), "key"),
        (
            json!({"store": "rustore", "key": RUSTORE_KEY, "app_ids": ["x"]}),
            "app_ids",
        ),
        (json!({"store": "autodesk", "key": RUSTORE_KEY}), "key"),
        (
            json!({"store": "autodesk", "receiver_emails": [""]}),
            "receiver_emails[0]",
        ),
        (json!({"id": "Not Valid", "store": "autodesk"}), "id"),
    ] {
        let answer = server.post("/v1/sources", &key, body.clone()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(answer.field(), Some(field), "{body}");
    }
    let taken = server
        .post(
            "/v1/sources",
            &key,
            json!({"id": "acme-rustore", "store": "autodesk"}),
        )
        .await;
    assert_eq!(taken.status, 409);

    // Update allow-lists and the app id; disable.
    let updated = server
        .patch(
            "/v1/sources/acme-rustore",
            &key,
            json!({"app_id": null, "enabled": false}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert!(updated.body["rustore"]["app_id"].is_null());
    assert_eq!(updated.body["enabled"], false);
    assert_eq!(
        server.ingest_garbage("rustore", ingest_key).await,
        404,
        "a disabled source is unknown to ingest"
    );
    let wrong_store = server
        .patch(
            "/v1/sources/acme-rustore",
            &key,
            json!({"receiver_emails": ["a@b.c"]}),
        )
        .await;
    assert_eq!(wrong_store.field(), Some("receiver_emails"));
    let autodesk_id = autodesk.body["id"].as_str().expect("id");
    let lists = server
        .patch(
            &format!("/v1/sources/{autodesk_id}"),
            &key,
            json!({"receiver_ids": ["MERCHANT1"], "app_ids": ["app-1"]}),
        )
        .await;
    assert_eq!(lists.status, 200);
    assert_eq!(lists.body["autodesk"]["receiver_ids"], json!(["MERCHANT1"]));
    assert_eq!(
        lists.body["autodesk"]["receiver_emails"],
        json!(["pay@example.com"])
    );

    // Rotate the RuStore key; then drop the previous one.
    let rotated = server
        .post(
            "/v1/sources/acme-rustore/rotate-key",
            &key,
            json!({"key": OTHER_RUSTORE_KEY}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.body["rustore"]["has_previous_key"], true);
    let stored: String = sqlx::query_scalar("SELECT credentials FROM sources WHERE id = $1")
        .bind("acme-rustore")
        .fetch_one(&server.pool)
        .await
        .expect("the source");
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(stored["key"], OTHER_RUSTORE_KEY);
    assert_eq!(stored["previous_key"], RUSTORE_KEY);
    let bad = server
        .post(
            "/v1/sources/acme-rustore/rotate-key",
            &key,
            json!({"key": "bm90IGEga2V5"}),
        )
        .await;
    assert_eq!(bad.field(), Some("key"));
    let autodesk_rotate = server
        .post(
            &format!("/v1/sources/{autodesk_id}/rotate-key"),
            &key,
            json!({"key": RUSTORE_KEY}),
        )
        .await;
    assert_eq!(autodesk_rotate.status, 400);
    let removed = server
        .delete("/v1/sources/acme-rustore/previous-key", &key)
        .await;
    assert_eq!(removed.status, 200);
    assert_eq!(removed.body["rustore"]["has_previous_key"], false);
    let got = server.get("/v1/sources/acme-rustore", &key).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["id"], "acme-rustore");
    assert_eq!(server.get("/v1/sources/nope", &key).await.status, 404);
    server.cleanup().await;
}
both_backends!(sources_lifecycle);
