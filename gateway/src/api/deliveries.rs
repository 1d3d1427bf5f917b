//! Deliveries and their attempts (the forwarder's `delivery_attempts`), replay of one event to
//! one endpoint, and recovery of an endpoint's dead deliveries.
//!
//! A replay (and a ping) is a delivery message published to `<prefix>.deliveries` with its
//! attempt count at 0: the forwarder attempts it at once, signs, retries and records it like any
//! other. A replayed dead delivery also stays in `<prefix>.dead` (where `storehook replay-dead`
//! would find it too); the receiver sees the same `webhook-id` either way.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::sql::{Arg, Select, page_by_time};
use super::{ApiResult, ApiState, Error, auth, limit, optional_time, parse_time, resource, time};
use crate::forward::worker::{PublishError, headers, publish_confirmed};
use crate::ledger::now_ms;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(resource("/events/{event_id}/deliveries").route(web::get().to(event_deliveries)))
        .service(resource("/events/{event_id}/attempts").route(web::get().to(event_attempts)))
        .service(resource("/events/{event_id}/replay").route(web::post().to(replay)))
        .service(
            resource("/endpoints/{endpoint_id}/attempts").route(web::get().to(endpoint_attempts)),
        )
        .service(
            resource("/endpoints/{endpoint_id}/deliveries")
                .route(web::get().to(endpoint_deliveries)),
        )
        .service(resource("/endpoints/{endpoint_id}/recover").route(web::post().to(recover)));
}

/// Most dead deliveries one recovery replays.
pub const RECOVER_MAX: i64 = 10_000;

/// One webhook attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    pub id: String,
    pub event_id: String,
    pub endpoint_id: String,
    /// 1 for the first attempt (of a replay too), 2 for the first retry, …
    pub attempt: i64,
    pub attempted_at: String,
    /// What became of the delivery after it: `delivered`, `retrying` or `dead`.
    pub outcome: String,
    /// The endpoint's HTTP status; null when none came.
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
    /// At most 1 KiB of the endpoint's answer (lossy UTF-8).
    pub response_body: Option<String>,
    pub next_attempt_at: Option<String>,
}

crate::api_list!(AttemptList, Attempt);

/// One event's delivery to one endpoint, by its latest attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub event_id: String,
    pub endpoint_id: String,
    /// `delivered`, `retrying` or `dead`: the latest attempt's outcome.
    pub status: String,
    pub attempts: i64,
    pub last_attempt_at: String,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
}

crate::api_list!(DeliveryList, Delivery);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttemptQuery {
    /// `delivered`, `retrying` or `dead`.
    pub outcome: Option<String>,
    /// Only attempts at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only attempts before this RFC 3339 time.
    pub until: Option<String>,
    /// Most items to return: 1 to 100, default 20.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// The latest attempt's outcome: `delivered`, `retrying` or `dead`.
    pub status: Option<String>,
    /// Most items to return: 1 to 100, default 20.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// The endpoint to deliver the event to (of the same tenant; enabled).
    pub endpoint_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub event_id: String,
    pub endpoint_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// Replay the deliveries that died at or after this RFC 3339 time.
    pub since: String,
    /// … and before this one (default: now).
    #[serde(default)]
    pub until: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    /// How many dead deliveries were queued again.
    pub replayed: u64,
}

const ATTEMPT_COLUMNS: &str = "id, event_id, endpoint_id, attempt, attempted_at, outcome, \
     status_code, error, latency_ms, response_body, next_attempt_at";

fn attempt_row(row: &sqlx::any::AnyRow) -> Result<(i64, Attempt), sqlx::Error> {
    let attempted_at: i64 = row.try_get(4)?;
    let body: Option<Vec<u8>> = row.try_get(9)?;
    let next: Option<i64> = row.try_get(10)?;
    Ok((
        attempted_at,
        Attempt {
            id: row.try_get(0)?,
            event_id: row.try_get(1)?,
            endpoint_id: row.try_get(2)?,
            attempt: row.try_get(3)?,
            attempted_at: time(attempted_at),
            outcome: row.try_get(5)?,
            status_code: row.try_get(6)?,
            error: row.try_get(7)?,
            latency_ms: row.try_get(8)?,
            response_body: body.map(|b| String::from_utf8_lossy(&b).into_owned()),
            next_attempt_at: optional_time(next),
        },
    ))
}

/// A delivery status given in `field`: `delivered`, `retrying` or `dead`.
fn check_outcome(field: &str, outcome: &str) -> ApiResult<()> {
    if ["delivered", "retrying", "dead"].contains(&outcome) {
        Ok(())
    } else {
        Err(Error::invalid(field, "must be delivered, retrying or dead"))
    }
}

/// The deliveries of one of the tenant's events, by endpoint.
pub(crate) async fn deliveries_of(
    state: &ApiState,
    tenant: &str,
    event_id: &str,
) -> ApiResult<Vec<Delivery>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE event_id = $1 AND tenant_id = $2 \
         ORDER BY attempted_at, attempt"
    )))
    .bind(event_id)
    .bind(tenant)
    .fetch_all(&state.pool)
    .await?;
    let mut by_endpoint: BTreeMap<String, Delivery> = BTreeMap::new();
    for row in &rows {
        let (_, attempt) = attempt_row(row)?;
        let entry = by_endpoint
            .entry(attempt.endpoint_id.clone())
            .or_insert_with(|| Delivery {
                event_id: attempt.event_id.clone(),
                endpoint_id: attempt.endpoint_id.clone(),
                status: String::new(),
                attempts: 0,
                last_attempt_at: String::new(),
                last_status_code: None,
                last_error: None,
                next_attempt_at: None,
            });
        entry.attempts += 1;
        entry.status = attempt.outcome;
        entry.last_attempt_at = attempt.attempted_at;
        entry.last_status_code = attempt.status_code;
        entry.last_error = attempt.error;
        entry.next_attempt_at = attempt.next_attempt_at;
    }
    Ok(by_endpoint.into_values().collect())
}

async fn require_event(state: &ApiState, tenant: &str, id: &str) -> ApiResult<String> {
    super::events::event_payload(state, tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("event"))
}

/// List an event's deliveries: one per endpoint attempted, with its status.
#[utoipa::path(get, path = "/v1/events/{event_id}/deliveries", tag = "deliveries",
    params(("event_id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event's deliveries (one page)", body = DeliveryList),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn event_deliveries(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    require_event(&state, &tenant, &path).await?;
    Ok(HttpResponse::Ok().json(DeliveryList {
        data: deliveries_of(&state, &tenant, &path).await?,
        next_cursor: None,
    }))
}

async fn list_attempts(
    state: &ApiState,
    tenant: &str,
    column: &str,
    value: &str,
    query: AttemptQuery,
) -> ApiResult<AttemptList> {
    let limit = limit(query.limit)?;
    let mut select = Select::new(
        format!(
            "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts \
             WHERE tenant_id = $1 AND {column} = $2"
        ),
        vec![Arg::Text(tenant.to_owned()), Arg::Text(value.to_owned())],
    );
    if let Some(outcome) = query.outcome {
        check_outcome("outcome", &outcome)?;
        select.and(" AND outcome = ?", Arg::Text(outcome));
    }
    select.between(
        "attempted_at",
        query.since.as_deref(),
        query.until.as_deref(),
    )?;
    select.newest_first("attempted_at", "id", query.cursor.as_deref(), limit)?;
    let rows = select.fetch_all(&state.pool).await?;
    let attempts = rows
        .iter()
        .map(attempt_row)
        .collect::<Result<Vec<_>, _>>()?;
    let (data, next_cursor) = page_by_time(attempts, limit, |a| a.id.as_str());
    Ok(AttemptList { data, next_cursor })
}

/// List an event's attempts, newest first.
#[utoipa::path(get, path = "/v1/events/{event_id}/attempts", tag = "deliveries",
    params(("event_id" = String, Path, description = "The event's id"), AttemptQuery),
    responses(
        (status = 200, description = "A page of attempts, newest first", body = AttemptList),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn event_attempts(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    query: web::Query<AttemptQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    require_event(&state, &tenant, &path).await?;
    let list = list_attempts(&state, &tenant, "event_id", &path, query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// List an endpoint's attempts (pings included), newest first.
#[utoipa::path(get, path = "/v1/endpoints/{endpoint_id}/attempts", tag = "deliveries",
    params(("endpoint_id" = String, Path, description = "The endpoint's id"), AttemptQuery),
    responses(
        (status = 200, description = "A page of attempts, newest first", body = AttemptList),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn endpoint_attempts(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    query: web::Query<AttemptQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    super::endpoints::find(&state, &tenant, &path).await?;
    let list = list_attempts(&state, &tenant, "endpoint_id", &path, query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// List an endpoint's deliveries, one per event, by their latest attempt (newest first).
#[utoipa::path(get, path = "/v1/endpoints/{endpoint_id}/deliveries", tag = "deliveries",
    params(("endpoint_id" = String, Path, description = "The endpoint's id"), DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries, by latest attempt, newest first", body = DeliveryList),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn endpoint_deliveries(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    query: web::Query<DeliveryQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let query = query.into_inner();
    let limit = limit(query.limit)?;
    let endpoint = super::endpoints::find(&state, &tenant, &path).await?;
    // The latest attempt of each (event, endpoint): no later one exists.
    let mut select = Select::new(
        "SELECT a.id, a.event_id, a.endpoint_id, a.attempt, a.attempted_at, a.outcome, \
         a.status_code, a.error, a.latency_ms, a.response_body, a.next_attempt_at, \
         (SELECT COUNT(*) FROM delivery_attempts c \
           WHERE c.event_id = a.event_id AND c.endpoint_id = a.endpoint_id) \
         FROM delivery_attempts a WHERE a.tenant_id = $1 AND a.endpoint_id = $2 \
         AND NOT EXISTS (SELECT 1 FROM delivery_attempts b \
           WHERE b.event_id = a.event_id AND b.endpoint_id = a.endpoint_id \
             AND (b.attempted_at > a.attempted_at \
               OR (b.attempted_at = a.attempted_at AND b.attempt > a.attempt) \
               OR (b.attempted_at = a.attempted_at AND b.attempt = a.attempt AND b.id > a.id)))",
        vec![Arg::Text(tenant), Arg::Text(endpoint.id)],
    );
    if let Some(status) = query.status {
        check_outcome("status", &status)?;
        select.and(" AND a.outcome = ?", Arg::Text(status));
    }
    select.newest_first("a.attempted_at", "a.id", query.cursor.as_deref(), limit)?;
    let rows = select.fetch_all(&state.pool).await?;
    let mut latest = Vec::with_capacity(rows.len());
    for row in &rows {
        let (at, attempt) = attempt_row(row)?;
        let count: i64 = row.try_get(11)?;
        latest.push((at, (attempt, count)));
    }
    let (latest, next_cursor) = page_by_time(latest, limit, |(a, _)| a.id.as_str());
    Ok(HttpResponse::Ok().json(DeliveryList {
        data: latest
            .into_iter()
            .map(|(a, count)| Delivery {
                event_id: a.event_id,
                endpoint_id: a.endpoint_id,
                status: a.outcome,
                attempts: count,
                last_attempt_at: a.attempted_at,
                last_status_code: a.status_code,
                last_error: a.error,
                next_attempt_at: a.next_attempt_at,
            })
            .collect(),
        next_cursor,
    }))
}

/// Publish a delivery of `body` to `endpoint` into `<prefix>.deliveries` with no attempt made
/// yet, and await the broker's confirm.
pub(crate) async fn enqueue(
    state: &ApiState,
    body: &[u8],
    event_id: &str,
    endpoint: &str,
) -> ApiResult<()> {
    let link = state.bus.borrow().clone();
    let Some(link) = link else {
        return Err(Error::unavailable("RabbitMQ is not connected; retry"));
    };
    let mut table = FieldTable::default();
    table.insert(
        headers::ENDPOINT.into(),
        AMQPValue::LongString(LongString::from(endpoint)),
    );
    table.insert(headers::ATTEMPTS.into(), AMQPValue::LongLongInt(0));
    table.insert(
        headers::FIRST_ATTEMPT_AT.into(),
        AMQPValue::LongLongInt(now_ms()),
    );
    let deliveries = state.names.deliveries.as_str();
    match publish_confirmed(&link.channel, deliveries, body, Some(event_id), table).await {
        Ok(()) => Ok(()),
        Err(PublishError::NoQueue(_)) => Err(Error::unavailable(format!(
            "{deliveries} does not exist: start a forwarder first"
        ))),
        Err(PublishError::Failed(error)) => {
            tracing::warn!(%error, "Cannot queue a delivery");
            Err(Error::unavailable(
                "cannot queue the delivery with RabbitMQ; retry",
            ))
        }
    }
}

/// Deliver one event to one endpoint again, with a fresh retry ladder.
#[utoipa::path(post, path = "/v1/events/{event_id}/replay", tag = "deliveries",
    params(("event_id" = String, Path, description = "The event's id")),
    request_body = Replay,
    responses(
        (status = 202, description = "Queued for the forwarder", body = Replayed),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such event or endpoint", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
        (status = 503, description = "RabbitMQ or the forwarder's queues are not available", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn replay(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<Replay>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let payload = require_event(&state, &tenant, &path).await?;
    let endpoint = super::endpoints::find(&state, &tenant, &body.endpoint_id)
        .await
        .map_err(|e| match e.code {
            "not_found" => Error {
                field: Some("endpoint_id".to_owned()),
                ..e
            },
            _ => e,
        })?;
    endpoint.require_enabled("endpoint_id")?;
    enqueue(&state, payload.as_bytes(), &path, &endpoint.id).await?;
    Ok(HttpResponse::Accepted().json(Replayed {
        event_id: path.into_inner(),
        endpoint_id: endpoint.id,
    }))
}

/// Replay every delivery to this endpoint that died in a time range and has not been delivered
/// (or replayed) since.
#[utoipa::path(post, path = "/v1/endpoints/{endpoint_id}/recover", tag = "deliveries",
    params(("endpoint_id" = String, Path, description = "The endpoint's id")),
    request_body = Recover,
    responses(
        (status = 202, description = "Queued for the forwarder", body = Recovered),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
        (status = 503, description = "RabbitMQ or the forwarder's queues are not available", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn recover(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<Recover>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let since = parse_time("since", &body.since)?;
    let until = match &body.until {
        Some(until) => parse_time("until", until)?,
        None => now_ms().saturating_add(1),
    };
    let endpoint = super::endpoints::find(&state, &tenant, &path).await?;
    endpoint.require_enabled("enabled")?;
    let rows = sqlx::query(
        "SELECT e.id, e.payload FROM events e WHERE e.tenant_id = $1 AND e.id IN ( \
           SELECT a.event_id FROM delivery_attempts a \
           WHERE a.endpoint_id = $2 AND a.tenant_id = $1 AND a.outcome = 'dead' \
             AND a.attempted_at >= $3 AND a.attempted_at < $4 \
             AND NOT EXISTS (SELECT 1 FROM delivery_attempts b \
               WHERE b.event_id = a.event_id AND b.endpoint_id = a.endpoint_id \
                 AND b.outcome <> 'dead' AND b.attempted_at > a.attempted_at)) \
         ORDER BY e.created_at, e.id LIMIT $5",
    )
    .bind(tenant.as_str())
    .bind(endpoint.id.as_str())
    .bind(since)
    .bind(until)
    .bind(RECOVER_MAX)
    .fetch_all(&state.pool)
    .await?;
    let mut replayed = 0;
    for row in &rows {
        let id: String = row.try_get(0)?;
        let payload: String = row.try_get(1)?;
        enqueue(&state, payload.as_bytes(), &id, &endpoint.id).await?;
        replayed += 1;
    }
    Ok(HttpResponse::Accepted().json(Recovered { replayed }))
}
