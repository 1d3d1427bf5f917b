//! A tenant's events: list with filters and cursor pagination, get one with its store payload and
//! its deliveries.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use storehook_schema::{Environment, EventType, Store};
use utoipa::{IntoParams, ToSchema};

use super::deliveries::{Delivery, deliveries_of};
use super::error::ErrorBody;
use super::sql::{Arg, Select, page_by_time};
use super::{ApiResult, ApiState, Error, auth, limit, optional_time, resource, time};

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(resource("/events").route(web::get().to(list_events)))
        .service(resource("/events/{event_id}").route(web::get().to(get_event)));
}

/// An event as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub store: String,
    /// `production` or `sandbox`.
    pub environment: String,
    pub source_id: String,
    pub routing_key: String,
    pub created_at: String,
    /// When RabbitMQ confirmed it (null while the outbox still holds it).
    pub published_at: Option<String>,
}

crate::api_list!(EventList, EventSummary);

/// One event with its payload, the notification it came from and its deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    /// The event exactly as published and forwarded.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub notification: Notification,
    /// One per endpoint that has been attempted, with its latest status.
    pub deliveries: Vec<Delivery>,
}

/// The store's notification as received.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notification {
    pub id: String,
    pub received_at: String,
    /// `accepted` or `rejected`.
    pub status: String,
    pub reason: Option<String>,
    /// The raw request body: as text when it is UTF-8, else base64.
    pub body: String,
    /// `utf8` or `base64`.
    pub body_encoding: String,
}

/// The filters of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// An event type (`subscription.renewed`) or a category (`subscription.*`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// `rustore` or `autodesk`.
    pub store: Option<String>,
    /// `production` or `sandbox`.
    pub environment: Option<String>,
    /// Only events stored at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only events stored before this RFC 3339 time.
    pub until: Option<String>,
    /// Most items to return: 1 to 100, default 20.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `(store, environment)` from `<tenant>.<store>.<environment>.<type>`.
fn routing_parts(routing_key: &str) -> (String, String) {
    let mut parts = routing_key.splitn(4, '.').skip(1);
    (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    )
}

const SUMMARY_COLUMNS: &str =
    "e.id, e.source_id, e.event_type, e.routing_key, e.created_at, e.published_at";

fn summary_row(row: &sqlx::any::AnyRow) -> Result<(i64, EventSummary), sqlx::Error> {
    let routing_key: String = row.try_get(3)?;
    let created_at: i64 = row.try_get(4)?;
    let published_at: Option<i64> = row.try_get(5)?;
    let (store, environment) = routing_parts(&routing_key);
    Ok((
        created_at,
        EventSummary {
            id: row.try_get(0)?,
            source_id: row.try_get(1)?,
            event_type: row.try_get(2)?,
            store,
            environment,
            routing_key,
            created_at: time(created_at),
            published_at: optional_time(published_at),
        },
    ))
}

/// List the tenant's events, newest first.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventQuery),
    responses(
        (status = 200, description = "A page of events, newest first", body = EventList),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_events(
    request: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<EventQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let query = query.into_inner();
    let limit = limit(query.limit)?;
    let mut select = Select::new(
        format!("SELECT {SUMMARY_COLUMNS} FROM events e WHERE e.tenant_id = $1"),
        vec![Arg::Text(tenant.clone())],
    );
    if let Some(event_type) = &query.event_type {
        if let Some(category) = event_type.strip_suffix(".*") {
            if !EventType::ALL
                .iter()
                .any(|t| t.as_str().starts_with(&format!("{category}.")))
            {
                return Err(Error::invalid("type", "matches no event type"));
            }
            select.and(
                " AND e.event_type LIKE ?",
                Arg::Text(format!("{category}.%")),
            );
        } else {
            if event_type.parse::<EventType>().is_err() {
                return Err(Error::invalid(
                    "type",
                    "not an event type (e.g. subscription.renewed or subscription.*)",
                ));
            }
            select.and(" AND e.event_type = ?", Arg::Text(event_type.clone()));
        }
    }
    let store = match &query.store {
        Some(store) => {
            store
                .parse::<Store>()
                .map_err(|_| Error::invalid("store", "must be rustore or autodesk"))?;
            store.as_str()
        }
        None => "%",
    };
    let environment = match &query.environment {
        Some(environment) => {
            environment
                .parse::<Environment>()
                .map_err(|_| Error::invalid("environment", "must be production or sandbox"))?;
            environment.as_str()
        }
        None => "%",
    };
    if query.store.is_some() || query.environment.is_some() {
        select.and(
            " AND e.routing_key LIKE ?",
            Arg::Text(format!("{tenant}.{store}.{environment}.%")),
        );
    }
    select.between(
        "e.created_at",
        query.since.as_deref(),
        query.until.as_deref(),
    )?;
    select.newest_first("e.created_at", "e.id", query.cursor.as_deref(), limit)?;
    let rows = select.fetch_all(&state.pool).await?;
    let events = rows
        .iter()
        .map(summary_row)
        .collect::<Result<Vec<_>, _>>()?;
    let (data, next_cursor) = page_by_time(events, limit, |e| e.id.as_str());
    Ok(HttpResponse::Ok().json(EventList { data, next_cursor }))
}

/// Whether the tenant has this event; its payload when it does.
pub(crate) async fn event_payload(
    state: &ApiState,
    tenant: &str,
    id: &str,
) -> ApiResult<Option<String>> {
    let row = sqlx::query("SELECT payload FROM events WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant)
        .fetch_optional(&state.pool)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}

/// Get one event: its payload, the store's notification, its deliveries.
#[utoipa::path(get, path = "/v1/events/{event_id}", tag = "events",
    params(("event_id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = EventDetail),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_event(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUMMARY_COLUMNS}, e.payload, n.id, n.received_at, n.status, n.reason, n.body \
         FROM events e JOIN notifications n ON n.id = e.notification_id \
         WHERE e.id = $1 AND e.tenant_id = $2"
    )))
    .bind(path.as_str())
    .bind(tenant.as_str())
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = row else {
        return Err(Error::not_found("event"));
    };
    let (_, summary) = summary_row(&row)?;
    let payload: String = row.try_get(6)?;
    let payload = serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload));
    let received_at: i64 = row.try_get(8)?;
    let body: Vec<u8> = row.try_get(11)?;
    let (body, body_encoding) = match String::from_utf8(body) {
        Ok(text) => (text, "utf8"),
        Err(e) => (
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
            "base64",
        ),
    };
    let notification = Notification {
        id: row.try_get(7)?,
        received_at: time(received_at),
        status: row.try_get(9)?,
        reason: row.try_get(10)?,
        body,
        body_encoding: body_encoding.to_owned(),
    };
    let deliveries = deliveries_of(&state, &tenant, &summary.id).await?;
    Ok(HttpResponse::Ok().json(EventDetail {
        summary,
        payload,
        notification,
        deliveries,
    }))
}
