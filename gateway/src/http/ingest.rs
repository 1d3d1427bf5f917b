//! `POST /ingest/{store}/{ingest_key}`: the one route the stores call.
//!
//! Order matters: find the source first (an unknown store or key gets a 404 before any body is
//! read), then read the raw bytes under the limit, verify and normalize, commit, publish, answer.
//! The answer is 200 only once the ledger has committed the notification: that commit is what
//! makes it safe to answer. The publish (by the ledger writer, for the whole commit group at
//! once) follows the commit; the request waits for its confirms only up to
//! `ingest.publish_wait_ms` (by default not at all), and the relay publishes whatever the broker
//! did not confirm.

use std::borrow::Cow;

use actix_web::http::Method;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, web};
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

/// The route's prefix; [`ingest`] serves everything under it.
pub const PREFIX: &str = "/ingest";

/// `POST /ingest/{store}/{ingest_key}`.
///
/// Served for the whole `/ingest` prefix and split here: actix matches a path with parameters by
/// regular expression, which cost a tenth of the HTTP worker's time per notification (perf). What
/// the pattern did not match before (another method, a missing or extra segment) gets the same
/// empty 404 as before.
pub async fn ingest(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let Some((store, ingest_key)) = ingest_path(&request) else {
        return Ok(HttpResponse::NotFound().finish());
    };
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

/// `(store, ingest_key)` of a `POST /ingest/{store}/{ingest_key}`, percent-decoded.
fn ingest_path(request: &HttpRequest) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    if request.method() != Method::POST {
        return None;
    }
    let rest = request.path().strip_prefix(PREFIX)?.strip_prefix('/')?;
    let (store, ingest_key) = rest.split_once('/')?;
    if store.is_empty() || ingest_key.is_empty() || ingest_key.contains('/') {
        return None;
    }
    Some((percent_decode(store)?, percent_decode(ingest_key)?))
}

/// `%XX` escapes decoded; `None` when that is not UTF-8 or an escape is broken.
fn percent_decode(segment: &str) -> Option<Cow<'_, str>> {
    if !segment.contains('%') {
        return Some(Cow::Borrowed(segment));
    }
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok().map(Cow::Owned)
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

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn split(method: Method, uri: &str) -> Option<(String, String)> {
        let request = TestRequest::default()
            .method(method)
            .uri(uri)
            .to_http_request();
        ingest_path(&request).map(|(store, key)| (store.into_owned(), key.into_owned()))
    }

    #[test]
    fn the_path_splits_into_store_and_key() {
        let expected = Some(("rustore".to_owned(), "key-1_A".to_owned()));
        assert_eq!(split(Method::POST, "/ingest/rustore/key-1_A"), expected);
        assert_eq!(split(Method::POST, "/ingest/rustore/key-1_A?x=1"), expected);
        assert_eq!(split(Method::POST, "/ingest/rustore/key-1%5FA"), expected);
    }

    #[test]
    fn other_shapes_and_methods_do_not_match() {
        for uri in [
            "/ingest",
            "/ingest/",
            "/ingest/rustore",
            "/ingest/rustore/",
            "/ingest//key",
            "/ingest/rustore/key/",
            "/ingest/rustore/key/more",
            "/ingest/rustore/bad%zz",
            "/ingestx/rustore/key",
        ] {
            assert_eq!(split(Method::POST, uri), None, "{uri}");
        }
        assert_eq!(split(Method::GET, "/ingest/rustore/key"), None);
    }
}
