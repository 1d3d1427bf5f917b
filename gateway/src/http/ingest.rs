//! `POST /ingest/{store}/{ingest_key}`: the one route the stores call.
//!
//! Order matters: find the source first (an unknown store or key gets a 404 before any body is
//! read), then read the raw bytes under the limit, verify and normalize, commit, publish, answer.
//! The answer is 200 only once the ledger has committed the notification; the publish (by the
//! ledger writer, for the whole commit group at once) is waited for only up to
//! `ingest.publish_wait_ms`, after which the relay owns the events.

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::Utc;
use futures_util::StreamExt;
use storehook_adapters::{Context, ErrorCategory, Store};

use super::ApiError;
use crate::ledger::registry::Registry;
use crate::ledger::writer::{LedgerWriter, NewNotification, WriteError};
use crate::metrics::{Metrics, Outcome};

/// What an ingest request needs.
#[derive(Debug)]
pub struct IngestState {
    pub registry: Registry,
    pub writer: LedgerWriter,
    pub metrics: Metrics,
    pub body_limit: usize,
}

#[post("/ingest/{store}/{ingest_key}")]
pub async fn ingest(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let (store, ingest_key) = path.into_inner();
    let store: Store = store.parse().map_err(|_| ApiError::NotFound)?;
    let result = handle(&request, store, &ingest_key, payload, &state).await;
    state.metrics.notification(
        store,
        match &result {
            Ok(()) => Outcome::Accepted,
            Err(ApiError::NotFound) => Outcome::UnknownSource,
            Err(ApiError::PayloadTooLarge(_)) => Outcome::TooLarge,
            Err(ApiError::Unauthenticated(_)) => Outcome::Unauthenticated,
            Err(ApiError::Malformed(_) | ApiError::BadBody(_)) => Outcome::Malformed,
            Err(ApiError::Unavailable(_)) => Outcome::Unavailable,
        },
    );
    result?;
    // RuStore wants a 200 (body ignored); Autodesk a 200 with an empty body.
    Ok(HttpResponse::Ok().finish())
}

async fn handle(
    request: &HttpRequest,
    store: Store,
    ingest_key: &str,
    payload: web::Payload,
    state: &IngestState,
) -> Result<(), ApiError> {
    let source = state
        .registry
        .find_source(store, ingest_key)
        .await
        .map_err(|error| {
            tracing::error!(%error, "Source lookup failed");
            ApiError::Unavailable("the registry is unavailable".to_owned())
        })?
        .ok_or(ApiError::NotFound)?;
    let body = read_body(request, payload, state.body_limit).await?;
    let received_at = Utc::now();
    let ctx = Context {
        tenant: &source.tenant_id,
        source: &source.id,
        received_at,
    };
    let received_ms = received_at.timestamp_millis();
    match storehook_adapters::process(&source.adapter, &body, &ctx) {
        Ok(events) => {
            let notification = NewNotification::accepted(
                &source.tenant_id,
                &source.id,
                store,
                received_ms,
                body,
                &events,
            );
            state.writer.store(notification).await.map_err(unavailable)
        }
        Err(rejection) => match rejection.category {
            // Anyone can post garbage to a known URL: count it, store nothing.
            ErrorCategory::Unauthenticated => {
                tracing::info!(source = %source.id, reason = %rejection.message, "Unauthenticated notification");
                Err(ApiError::Unauthenticated(rejection.message))
            }
            ErrorCategory::Malformed => {
                tracing::warn!(source = %source.id, reason = %rejection.message, "Malformed notification kept as rejected");
                let notification = NewNotification::rejected(
                    &source.tenant_id,
                    &source.id,
                    store,
                    received_ms,
                    body,
                    rejection.message.clone(),
                );
                // Not kept means the operator could not replay it: have the store retry instead.
                state
                    .writer
                    .store(notification)
                    .await
                    .map_err(unavailable)?;
                Err(ApiError::Malformed(rejection.message))
            }
        },
    }
}

fn unavailable(error: WriteError) -> ApiError {
    tracing::error!(%error, "Notification not committed; answering 503");
    ApiError::Unavailable("the ledger is unavailable, retry later".to_owned())
}

/// The raw bytes, untouched, refused past `limit` (by the announced length when there is one, so
/// an oversized body is not even read).
async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadBody(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
