//! The management API under `/v1`, and its OpenAPI document at `/openapi.json`.
//!
//! - [`auth`]: `Authorization: Bearer` with the admin key or a tenant's API key.
//! - [`error`]: the JSON error body every failure answers with.
//! - [`tenants`]: tenants and their API keys (admin key).
//! - [`sources`], [`endpoints`], [`events`], [`deliveries`]: a tenant's resources (tenant keys).
//! - [`openapi`]: the document, generated from the handlers' annotations.
//! - `sql`: the queries the handlers share (a tenant's table by id, filtered lists newest first).
//!
//! Lists take `limit` (1–100, default 20) and an opaque `cursor`, and answer
//! `{"data": [...], "next_cursor": "..."}` (`null` on the last page). A resource of another tenant
//! is answered 404, as if it did not exist.
//!
//! Changes reach ingest once its source cache expires (`ingest.source_cache_ms`) and the forwarder
//! once its endpoint cache does (`forward.endpoint_cache`).

pub mod auth;
pub mod deliveries;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod openapi;
pub mod sources;
mod sql;
pub mod tenants;

use actix_web::{HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use sqlx::AnyPool;
use utoipa::IntoParams;

use crate::bus::BusState;
use crate::configuration::{Secret, Settings};
use crate::forward::ForwardSettings;
use crate::forward::topology::Names;
use crate::ledger::Ledger;
pub use error::{ApiResult, Error};

/// What the management API needs.
#[derive(Debug)]
pub struct ApiState {
    pub pool: AnyPool,
    pub admin_key: Secret,
    /// Base of the ingest URLs handed out, without a trailing `/`.
    pub public_url: String,
    pub forward: ForwardSettings,
    /// The forwarder's queue names: replays and pings are published to `<prefix>.deliveries`.
    pub names: Names,
    pub bus: BusState,
    pub body_limit: usize,
}

impl ApiState {
    pub fn new(settings: &Settings, ledger: &Ledger, bus: BusState) -> anyhow::Result<ApiState> {
        let schedule = settings.forward.schedule()?;
        Ok(ApiState {
            pool: ledger.pool().clone(),
            admin_key: settings.api.admin_key.clone(),
            public_url: settings.public_url(),
            forward: settings.forward.clone(),
            names: Names::new(&settings.broker.prefix, &schedule),
            bus,
            body_limit: settings.server.body_limit,
        })
    }
}

/// Mount `/v1/…` and `/openapi.json`.
pub fn configure(config: &mut web::ServiceConfig, state: web::Data<ApiState>) {
    let json = web::JsonConfig::default()
        .limit(state.body_limit)
        .error_handler(|error, _| {
            let message = match &error {
                actix_web::error::JsonPayloadError::ContentType => {
                    "expected Content-Type: application/json".to_owned()
                }
                other => format!("unreadable JSON body: {other}"),
            };
            let field = match &error {
                actix_web::error::JsonPayloadError::Deserialize(e) => json_error_field(e),
                _ => None,
            };
            let mut api = Error::bad_request(message);
            api.field = field;
            api.into()
        });
    let query = web::QueryConfig::default().error_handler(|error, _| {
        Error::bad_request(format!("unusable query string: {error}")).into()
    });
    let path = web::PathConfig::default()
        .error_handler(|error, _| Error::bad_request(format!("unusable path: {error}")).into());
    config.route("/openapi.json", web::get().to(openapi::document));
    config.service(
        web::scope("/v1")
            .app_data(state)
            .app_data(json)
            .app_data(query)
            .app_data(path)
            .configure(tenants::routes)
            .configure(sources::routes)
            .configure(endpoints::routes)
            .configure(events::routes)
            .configure(deliveries::routes)
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> ApiResult<HttpResponse> {
    Err(Error::route_not_found())
}

async fn method_not_allowed() -> ApiResult<HttpResponse> {
    Err(Error::method_not_allowed())
}

/// A resource route: `methods` handled, every other method answered 405 in JSON.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Which field a serde error names, when it says (`unknown field `x``, `missing field `x``).
fn json_error_field(error: &serde_json::Error) -> Option<String> {
    let text = error.to_string();
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = text.split_once(marker).map(|(_, rest)| rest)
            && let Some((field, _)) = rest.split_once('`')
        {
            return Some(field.to_owned());
        }
    }
    None
}

/// An optional JSON body: empty means `T::default()`; anything else must parse.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| {
        let mut api = Error::bad_request(format!("unreadable JSON body: {error}"));
        api.field = json_error_field(&error);
        api
    })
}

/// `limit` and `cursor` of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Most items to return: 1 to 100, default 20.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// For a list in id order: the validated `limit`, and the id the page starts after (empty on
    /// the first page).
    pub fn after_id(&self) -> ApiResult<(i64, String)> {
        let limit = limit(self.limit)?;
        let after = match &self.cursor {
            Some(cursor) => decode_cursor(cursor)?,
            None => String::new(),
        };
        Ok((limit, after))
    }
}

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// A validated `limit`.
pub fn limit(limit: Option<i64>) -> ApiResult<i64> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// An opaque cursor: URL-safe base64 of the last item's sort key.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> ApiResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Error::invalid("cursor", "not a cursor this API handed out"))
}

/// A `(time, id)` cursor, for lists in time order.
pub fn decode_time_cursor(cursor: &str) -> ApiResult<(i64, String)> {
    let text = decode_cursor(cursor)?;
    text.split_once(':')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_owned())))
        .ok_or_else(|| Error::invalid("cursor", "not a cursor this API handed out"))
}

pub fn encode_time_cursor(at: i64, id: &str) -> String {
    encode_cursor(&format!("{at}:{id}"))
}

/// RFC 3339 UTC with milliseconds.
pub fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn optional_time(ms: Option<i64>) -> Option<String> {
    ms.map(time)
}

/// Parse an RFC 3339 time given in `field`.
pub fn parse_time(field: &str, text: &str) -> ApiResult<i64> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            Error::invalid(
                field,
                "must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
            )
        })
}

/// A resource id given by the client, or a fresh one `<kind>_<24 hex>`.
pub fn resource_id(field: &str, given: Option<&str>, kind: &str) -> ApiResult<String> {
    match given {
        Some(id) if crate::configuration::is_routing_word(id) => Ok(id.to_owned()),
        Some(_) => Err(Error::invalid(
            field,
            "use 1 to 64 lower-case letters, digits, '_' and '-'",
        )),
        None => {
            let random = uuid::Uuid::new_v4().simple().to_string();
            Ok(format!("{kind}_{}", &random[..24]))
        }
    }
}

/// Helper for `201 Created` answers.
pub fn created<T: serde::Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Created().json(body)
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// A page of `T`s: `{"data": [...], "next_cursor": ...}`.
#[macro_export]
macro_rules! api_list {
    ($name:ident, $item:ty) => {
        #[doc = concat!("A page of `", stringify!($item), "`; `next_cursor` is null on the last page.")]
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub data: Vec<$item>,
            pub next_cursor: Option<String>,
        }
    };
}

/// Cut a fetched `limit + 1` rows down to `limit` and the cursor of the next page.
pub fn page<T>(
    mut items: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(cursor);
        (items, next)
    } else {
        (items, None)
    }
}
