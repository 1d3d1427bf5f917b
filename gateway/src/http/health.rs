//! `/healthz`, `/readyz` and `/metrics`.

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use super::OpsState;

/// Alive: the process serves HTTP.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready: the database answers and a confirm-mode channel to the broker is open.
#[get("/readyz")]
pub async fn readyz(state: web::Data<OpsState>) -> HttpResponse {
    let database = state.ledger.ping().await;
    let broker = state.publisher.is_connected();
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({ "database": word(database), "broker": word(broker) });
    if database && broker {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition.
#[get("/metrics")]
pub async fn metrics(state: web::Data<OpsState>) -> HttpResponse {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text)
}
