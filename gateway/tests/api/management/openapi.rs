//! `/openapi.json`: an OpenAPI 3 document listing every route.

use super::{Backend, Server};

/// Every route of the management API, as OpenAPI writes it.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/tenants"),
    ("get", "/v1/tenants"),
    ("get", "/v1/tenants/{tenant_id}"),
    ("delete", "/v1/tenants/{tenant_id}"),
    ("post", "/v1/tenants/{tenant_id}/api-keys"),
    ("get", "/v1/tenants/{tenant_id}/api-keys"),
    ("delete", "/v1/tenants/{tenant_id}/api-keys/{key_id}"),
    ("post", "/v1/sources"),
    ("get", "/v1/sources"),
    ("get", "/v1/sources/{source_id}"),
    ("patch", "/v1/sources/{source_id}"),
    ("post", "/v1/sources/{source_id}/rotate-key"),
    ("delete", "/v1/sources/{source_id}/previous-key"),
    ("post", "/v1/endpoints"),
    ("get", "/v1/endpoints"),
    ("get", "/v1/endpoints/{endpoint_id}"),
    ("patch", "/v1/endpoints/{endpoint_id}"),
    ("delete", "/v1/endpoints/{endpoint_id}"),
    ("post", "/v1/endpoints/{endpoint_id}/rotate-secret"),
    ("post", "/v1/endpoints/{endpoint_id}/ping"),
    ("get", "/v1/endpoints/{endpoint_id}/attempts"),
    ("get", "/v1/endpoints/{endpoint_id}/deliveries"),
    ("post", "/v1/endpoints/{endpoint_id}/recover"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{event_id}"),
    ("get", "/v1/events/{event_id}/deliveries"),
    ("get", "/v1/events/{event_id}/attempts"),
    ("post", "/v1/events/{event_id}/replay"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_and_lists_every_route() {
    let server = Server::spawn(Backend::Sqlite).await;
    let answer = server
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(answer.status, 200);
    let document = answer.body;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{document}"
    );
    let paths = document["paths"].as_object().expect("paths");
    let mut listed = 0;
    for (path, operations) in paths {
        for method in operations.as_object().expect("operations").keys() {
            if ["get", "post", "patch", "put", "delete"].contains(&method.as_str()) {
                listed += 1;
                assert!(
                    ROUTES.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} is documented but not known to this test"
                );
            }
        }
    }
    for (method, path) in ROUTES {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        assert!(operation["responses"].is_object(), "{method} {path}");
    }
    assert_eq!(listed, ROUTES.len());
    let schemes = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["scheme"], "bearer");
    for schema in [
        "ErrorBody",
        "Tenant",
        "Source",
        "Endpoint",
        "EventDetail",
        "Attempt",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "schema {schema} is missing"
        );
    }
    server.cleanup().await;
}
