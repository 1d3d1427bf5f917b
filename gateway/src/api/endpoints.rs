//! A tenant's webhook endpoints: register (the answer holds the `whsec_…` secret), list, get,
//! update, delete, rotate the secret with an overlap, send a `test.ping`. The forwarder sees a
//! change once its endpoint cache expires (`forward.endpoint_cache`).

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use url::Url;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::sql::TenantTable;
use super::{ApiResult, ApiState, Error, PageQuery, auth, created, resource, resource_id, time};
use crate::forward::config::TypeFilter;
use crate::forward::endpoints::{StoredSecret, parse_secrets};
use crate::forward::signature::SECRET_PREFIX;
use crate::forward::ssrf::check_url;
use crate::ledger::now_ms;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            resource("/endpoints")
                .route(web::post().to(create_endpoint))
                .route(web::get().to(list_endpoints)),
        )
        .service(
            resource("/endpoints/{endpoint_id}")
                .route(web::get().to(get_endpoint))
                .route(web::patch().to(update_endpoint))
                .route(web::delete().to(delete_endpoint)),
        )
        .service(
            resource("/endpoints/{endpoint_id}/rotate-secret").route(web::post().to(rotate_secret)),
        )
        .service(resource("/endpoints/{endpoint_id}/ping").route(web::post().to(ping)));
}

/// The default overlap of a secret rotation: 24 hours.
pub const DEFAULT_OVERLAP_SECONDS: u64 = 24 * 3600;
/// The longest overlap: 30 days.
pub const MAX_OVERLAP_SECONDS: u64 = 30 * 24 * 3600;

/// An endpoint as answered: never its secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    /// Exact types, categories (`subscription.*`) or `*`; empty means every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Until when the secret before the last rotation still signs too (null when none does).
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

crate::api_list!(EndpointList, Endpoint);

/// A registered or rotated endpoint: the only answer holding its signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_<base64>`: verify `webhook-signature` with it (Standard Webhooks). Not shown again.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// 1 to 64 of `[a-z0-9_-]`; generated (`ep_…`) when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// `https://…` (`http://` only with `forward.allow_http`); private, loopback and metadata
    /// addresses only with `forward.allow_private_targets`.
    pub url: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the current secret keeps signing beside the new one: 0 to 2592000 seconds,
    /// default 86400 (24 h).
    #[serde(default)]
    pub overlap_seconds: Option<u64>,
}

/// A `test.ping` on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingSent {
    /// The ping's `webhook-id`; its attempts are listed under the endpoint.
    pub event_id: String,
}

/// A fresh secret: `whsec_` and 32 random bytes.
pub fn new_secret() -> String {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn check_target(state: &ApiState, url: &str) -> ApiResult<()> {
    let parsed = Url::parse(url).map_err(|e| Error::invalid("url", format!("not a URL: {e}")))?;
    check_url(
        &parsed,
        state.forward.allow_http,
        state.forward.allow_private_targets,
    )
    .map_err(|e| Error::invalid("url", e.to_string()))
}

fn check_types(types: &[String]) -> ApiResult<()> {
    if types.len() > 100 {
        return Err(Error::invalid("event_types", "at most 100 patterns"));
    }
    for (i, pattern) in types.iter().enumerate() {
        TypeFilter::parse(std::slice::from_ref(pattern))
            .map_err(|message| Error::invalid(format!("event_types[{i}]"), message))?;
    }
    Ok(())
}

pub(crate) struct StoredEndpoint {
    pub id: String,
    pub url: String,
    pub secrets: Vec<StoredSecret>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StoredEndpoint {
    /// Deliveries queued to a disabled endpoint would only be buried: refuse them.
    pub fn require_enabled(&self, field: &str) -> ApiResult<()> {
        if self.enabled {
            Ok(())
        } else {
            Err(Error::conflict(
                field,
                "the endpoint is disabled: enable it first (PATCH {\"enabled\": true})",
            ))
        }
    }

    fn view(&self) -> Endpoint {
        let now = now_ms();
        let previous = self
            .secrets
            .iter()
            .filter(|s| s.active(now))
            .filter_map(StoredSecret::expires_at)
            .max();
        Endpoint {
            id: self.id.clone(),
            url: self.url.clone(),
            event_types: self.event_types.clone(),
            enabled: self.enabled,
            previous_secret_expires_at: previous.map(time),
            created_at: time(self.created_at),
            updated_at: time(self.updated_at),
        }
    }
}

const TABLE: TenantTable = TenantTable {
    name: "endpoints",
    columns: "id, url, secrets, event_types, enabled, created_at, updated_at",
};

fn parse_row(row: &sqlx::any::AnyRow) -> ApiResult<StoredEndpoint> {
    let id: String = row.try_get(0)?;
    let secrets: String = row.try_get(2)?;
    let event_types: String = row.try_get(3)?;
    let enabled: i64 = row.try_get(4)?;
    let secrets = parse_secrets(&secrets).map_err(|error| {
        tracing::error!(endpoint = %id, %error, "Unreadable endpoint secrets");
        Error::internal()
    })?;
    let event_types = serde_json::from_str(&event_types).unwrap_or_default();
    Ok(StoredEndpoint {
        id,
        url: row.try_get(1)?,
        secrets,
        event_types,
        enabled: enabled != 0,
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
    })
}

/// One of the tenant's endpoints, or 404.
pub(crate) async fn find(state: &ApiState, tenant: &str, id: &str) -> ApiResult<StoredEndpoint> {
    match TABLE.row(state, tenant, id).await? {
        Some(row) => parse_row(&row),
        None => Err(Error::not_found("endpoint")),
    }
}

fn secrets_json(secrets: &[StoredSecret]) -> String {
    serde_json::to_string(secrets).unwrap_or_else(|_| "[]".to_owned())
}

async fn save(state: &ApiState, tenant: &str, row: &StoredEndpoint) -> ApiResult<()> {
    sqlx::query(
        "UPDATE endpoints SET url = $3, secrets = $4, event_types = $5, enabled = $6, \
         updated_at = $7 WHERE id = $1 AND tenant_id = $2",
    )
    .bind(row.id.as_str())
    .bind(tenant)
    .bind(row.url.as_str())
    .bind(secrets_json(&row.secrets))
    .bind(json!(row.event_types).to_string())
    .bind(i64::from(row.enabled))
    .bind(row.updated_at)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Register an endpoint; the answer holds its signing secret, once.
#[utoipa::path(post, path = "/v1/endpoints", tag = "endpoints", request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Registered; `secret` is shown this once", body = EndpointWithSecret),
        (status = 400, description = "Invalid request (URL scheme, forbidden address, unknown event type)", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_endpoint(
    request: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Json<CreateEndpoint>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let body = body.into_inner();
    let id = resource_id("id", body.id.as_deref(), "ep")?;
    check_target(&state, &body.url)?;
    check_types(&body.event_types)?;
    let secret = new_secret();
    let now = now_ms();
    let row = StoredEndpoint {
        id,
        url: body.url,
        secrets: vec![StoredSecret::Expiring {
            secret: secret.clone(),
            expires_at: None,
        }],
        event_types: body.event_types,
        enabled: body.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    let inserted = sqlx::query(
        "INSERT INTO endpoints \
         (id, tenant_id, url, secrets, event_types, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(row.id.as_str())
    .bind(tenant.as_str())
    .bind(row.url.as_str())
    .bind(secrets_json(&row.secrets))
    .bind(json!(row.event_types).to_string())
    .bind(i64::from(row.enabled))
    .bind(now)
    .execute(&state.pool)
    .await;
    match inserted {
        Ok(_) => Ok(created(&EndpointWithSecret {
            endpoint: row.view(),
            secret,
        })),
        Err(e) if super::is_unique_violation(&e) => {
            Err(Error::conflict("id", "an endpoint with this id exists"))
        }
        Err(e) => Err(e.into()),
    }
}

/// List the tenant's endpoints, by id.
#[utoipa::path(get, path = "/v1/endpoints", tag = "endpoints", params(PageQuery),
    responses(
        (status = 200, description = "A page of endpoints", body = EndpointList),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_endpoints(
    request: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let (rows, next_cursor) = TABLE
        .page_by_id(&state, &tenant, &query, parse_row, |row| row.id.as_str())
        .await?;
    Ok(HttpResponse::Ok().json(EndpointList {
        data: rows.iter().map(StoredEndpoint::view).collect(),
        next_cursor,
    }))
}

/// Get one of the tenant's endpoints.
#[utoipa::path(get, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_endpoint(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    Ok(HttpResponse::Ok().json(find(&state, &tenant, &path).await?.view()))
}

/// Change an endpoint's URL, event types, or enable/disable it.
#[utoipa::path(patch, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint's id")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "The updated endpoint", body = Endpoint),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_endpoint(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<UpdateEndpoint>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let body = body.into_inner();
    let mut row = find(&state, &tenant, &path).await?;
    if let Some(url) = body.url {
        check_target(&state, &url)?;
        row.url = url;
    }
    if let Some(types) = body.event_types {
        check_types(&types)?;
        row.event_types = types;
    }
    if let Some(enabled) = body.enabled {
        row.enabled = enabled;
    }
    row.updated_at = now_ms();
    save(&state, &tenant, &row).await?;
    Ok(HttpResponse::Ok().json(row.view()))
}

/// Delete an endpoint. Its deliveries still waiting for a retry are kept as dead.
#[utoipa::path(delete, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_endpoint(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let deleted = sqlx::query("DELETE FROM endpoints WHERE id = $1 AND tenant_id = $2")
        .bind(path.as_str())
        .bind(tenant.as_str())
        .execute(&state.pool)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(Error::not_found("endpoint"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Give an endpoint a new signing secret. The current one keeps signing beside it for
/// `overlap_seconds` (each webhook then carries both signatures), so the receiver can switch
/// without losing a delivery.
#[utoipa::path(post, path = "/v1/endpoints/{endpoint_id}/rotate-secret", tag = "endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint's id")),
    request_body = RotateSecret,
    responses(
        (status = 200, description = "Rotated; the new `secret` is shown this once", body = EndpointWithSecret),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let body: RotateSecret = super::optional_json(&body)?;
    let overlap = body.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECONDS);
    if overlap > MAX_OVERLAP_SECONDS {
        return Err(Error::invalid(
            "overlap_seconds",
            format!("at most {MAX_OVERLAP_SECONDS} (30 days)"),
        ));
    }
    let mut row = find(&state, &tenant, &path).await?;
    let now = now_ms();
    let until = now.saturating_add(i64::try_from(overlap * 1000).unwrap_or(i64::MAX));
    let secret = new_secret();
    let mut secrets = vec![StoredSecret::Expiring {
        secret: secret.clone(),
        expires_at: None,
    }];
    if overlap > 0 {
        for old in &row.secrets {
            if !old.active(now) {
                continue;
            }
            let expires_at = old.expires_at().map_or(until, |at| at.min(until));
            secrets.push(StoredSecret::Expiring {
                secret: old.secret().to_owned(),
                expires_at: Some(expires_at),
            });
        }
    }
    row.secrets = secrets;
    row.updated_at = now;
    save(&state, &tenant, &row).await?;
    Ok(HttpResponse::Ok().json(EndpointWithSecret {
        endpoint: row.view(),
        secret,
    }))
}

/// Send a `test.ping` webhook to this endpoint through the forwarder (signed, retried and
/// recorded like any delivery). Its body: `{"schema_version": "1", "id", "type": "test.ping",
/// "tenant", "endpoint", "occurred_at", "received_at"}`.
#[utoipa::path(post, path = "/v1/endpoints/{endpoint_id}/ping", tag = "endpoints",
    params(("endpoint_id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 202, description = "Queued for the forwarder", body = PingSent),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
        (status = 503, description = "RabbitMQ or the forwarder's queues are not available", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn ping(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let endpoint = find(&state, &tenant, &path).await?;
    endpoint.require_enabled("enabled")?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = time(now_ms());
    let body = json!({
        "schema_version": "1",
        "id": id,
        "type": "test.ping",
        "tenant": tenant,
        "endpoint": endpoint.id,
        "occurred_at": now,
        "received_at": now,
    })
    .to_string();
    super::deliveries::enqueue(&state, body.as_bytes(), &id, &endpoint.id).await?;
    Ok(HttpResponse::Accepted().json(PingSent { event_id: id }))
}
