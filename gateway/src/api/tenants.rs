//! Tenants and their API keys: the admin key's routes.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::sql::page_by_time;
use super::{
    ApiResult, ApiState, Error, PageQuery, auth, created, decode_time_cursor, encode_cursor, limit,
    page, resource, time,
};
use crate::ledger::now_ms;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            resource("/tenants")
                .route(web::post().to(create_tenant))
                .route(web::get().to(list_tenants)),
        )
        .service(
            resource("/tenants/{tenant_id}")
                .route(web::get().to(get_tenant))
                .route(web::delete().to(delete_tenant)),
        )
        .service(
            resource("/tenants/{tenant_id}/api-keys")
                .route(web::post().to(create_api_key))
                .route(web::get().to(list_api_keys)),
        )
        .service(
            resource("/tenants/{tenant_id}/api-keys/{key_id}")
                .route(web::delete().to(revoke_api_key)),
        );
}

/// An app maker.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    /// The first word of every routing key: `[a-z0-9_-]`.
    pub id: String,
    pub name: Option<String>,
    pub created_at: String,
}

crate::api_list!(TenantList, Tenant);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1 to 64 of `[a-z0-9_-]`; becomes the first word of the tenant's routing keys.
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A tenant API key as listed: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    /// The 8 characters after `sk_`, to tell keys apart.
    pub prefix: String,
    pub name: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

crate::api_list!(ApiKeyList, ApiKey);

/// `GET /v1/tenants/{tenant_id}/api-keys` filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiKeyQuery {
    /// Only the key with this prefix (the 8 characters after `sk_`).
    pub prefix: Option<String>,
    /// Most items to return: 1 to 100, default 20.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A new API key: the only answer that ever contains `key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// `sk_<prefix>_<secret>`: store it now, it is not shown again.
    pub key: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[serde(default)]
    pub name: Option<String>,
}

fn check_name(name: &Option<String>) -> ApiResult<()> {
    match name {
        Some(name) if name.chars().count() > 200 => {
            Err(Error::invalid("name", "at most 200 characters"))
        }
        _ => Ok(()),
    }
}

/// Create a tenant.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = Tenant),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not the admin key", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_tenant(
    request: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Json<CreateTenant>,
) -> ApiResult<HttpResponse> {
    auth::admin(&request, &state).await?;
    let body = body.into_inner();
    if !crate::configuration::is_routing_word(&body.id) {
        return Err(Error::invalid(
            "id",
            "use 1 to 64 lower-case letters, digits, '_' and '-' (it becomes a routing-key word)",
        ));
    }
    check_name(&body.name)?;
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)",
    )
    .bind(body.id.as_str())
    .bind(body.name.clone())
    .bind(now)
    .execute(&state.pool)
    .await;
    match inserted {
        Ok(_) => Ok(created(&Tenant {
            id: body.id,
            name: body.name,
            created_at: time(now),
        })),
        Err(e) if super::is_unique_violation(&e) => {
            Err(Error::conflict("id", "a tenant with this id exists"))
        }
        Err(e) => Err(e.into()),
    }
}

fn tenant_row(row: &sqlx::any::AnyRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        created_at: time(row.try_get(2)?),
    })
}

/// List tenants, by id.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(PageQuery),
    responses(
        (status = 200, description = "A page of tenants", body = TenantList),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not the admin key", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_tenants(
    request: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    auth::admin(&request, &state).await?;
    let (limit, after) = query.after_id()?;
    let rows =
        sqlx::query("SELECT id, name, created_at FROM tenants WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit + 1)
            .fetch_all(&state.pool)
            .await?;
    let tenants = rows.iter().map(tenant_row).collect::<Result<Vec<_>, _>>()?;
    let (data, next_cursor) = page(tenants, limit, |t| encode_cursor(&t.id));
    Ok(HttpResponse::Ok().json(TenantList { data, next_cursor }))
}

async fn find_tenant(state: &ApiState, id: &str) -> ApiResult<Tenant> {
    let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    match row {
        Some(row) => Ok(tenant_row(&row)?),
        None => Err(Error::not_found("tenant")),
    }
}

/// Get a tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not the admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_tenant(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth::admin(&request, &state).await?;
    Ok(HttpResponse::Ok().json(find_tenant(&state, &path).await?))
}

/// Delete a tenant with its API keys, sources and endpoints (its events stay in the ledger). A
/// tenant declared in the configuration file comes back at the next start.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not the admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_tenant(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    auth::admin(&request, &state).await?;
    let id = path.into_inner();
    let mut tx = state.pool.begin().await?;
    for table in ["api_keys", "sources", "endpoints"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant_id = $1"
        )))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    }
    let deleted = sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(Error::not_found("tenant"));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

fn api_key_row(row: &sqlx::any::AnyRow) -> Result<(i64, ApiKey), sqlx::Error> {
    let created_at: i64 = row.try_get(4)?;
    let revoked_at: Option<i64> = row.try_get(5)?;
    Ok((
        created_at,
        ApiKey {
            id: row.try_get(0)?,
            tenant_id: row.try_get(1)?,
            prefix: row.try_get(2)?,
            name: row.try_get(3)?,
            created_at: time(created_at),
            revoked_at: revoked_at.map(time),
        },
    ))
}

/// Create an API key for a tenant; the answer holds the key, once.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/api-keys", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's id")),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; `key` is shown this once", body = CreatedApiKey),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not the admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_api_key(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    auth::admin(&request, &state).await?;
    let body: CreateApiKey = super::optional_json(&body)?;
    check_name(&body.name)?;
    let tenant = find_tenant(&state, &path).await?;
    let now = now_ms();
    // The prefix is short (it is shown in lists): on the rare collision, draw again.
    for _ in 0..5 {
        let (key, prefix) = auth::new_key();
        let id = super::resource_id("id", None, "key")?;
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, prefix, hash, name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(tenant.id.as_str())
        .bind(prefix.as_str())
        .bind(auth::key_hash(&key))
        .bind(body.name.clone())
        .bind(now)
        .execute(&state.pool)
        .await;
        match inserted {
            Ok(_) => {
                return Ok(created(&CreatedApiKey {
                    api_key: ApiKey {
                        id,
                        tenant_id: tenant.id,
                        prefix,
                        name: body.name,
                        created_at: time(now),
                        revoked_at: None,
                    },
                    key,
                }));
            }
            Err(e) if super::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::internal())
}

/// List a tenant's API keys (revoked ones too), oldest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/api-keys", tag = "tenants",
    params(("tenant_id" = String, Path, description = "The tenant's id"), ApiKeyQuery),
    responses(
        (status = 200, description = "A page of keys, without the keys themselves", body = ApiKeyList),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not the admin key", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_api_keys(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    query: web::Query<ApiKeyQuery>,
) -> ApiResult<HttpResponse> {
    auth::admin(&request, &state).await?;
    let limit = limit(query.limit)?;
    let (after_at, after_id) = match &query.cursor {
        Some(cursor) => decode_time_cursor(cursor)?,
        None => (i64::MIN, String::new()),
    };
    let tenant = find_tenant(&state, &path).await?;
    let rows = sqlx::query(
        "SELECT id, tenant_id, prefix, name, created_at, revoked_at FROM api_keys \
         WHERE tenant_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
         AND ($5 = '' OR prefix = $5) ORDER BY created_at, id LIMIT $4",
    )
    .bind(tenant.id.as_str())
    .bind(after_at)
    .bind(after_id)
    .bind(limit + 1)
    .bind(query.prefix.clone().unwrap_or_default())
    .fetch_all(&state.pool)
    .await?;
    let keys = rows
        .iter()
        .map(api_key_row)
        .collect::<Result<Vec<_>, _>>()?;
    let (data, next_cursor) = page_by_time(keys, limit, |key| key.id.as_str());
    Ok(HttpResponse::Ok().json(ApiKeyList { data, next_cursor }))
}

/// Revoke a tenant's API key, named by its id or its prefix (idempotent).
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/api-keys/{key_id}", tag = "tenants",
    params(
        ("tenant_id" = String, Path, description = "The tenant's id"),
        ("key_id" = String, Path, description = "The key's id, or its prefix"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not the admin key", body = ErrorBody),
        (status = 404, description = "No such tenant or key", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn revoke_api_key(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    auth::admin(&request, &state).await?;
    let (tenant, key) = path.into_inner();
    let found =
        sqlx::query("SELECT id FROM api_keys WHERE (id = $1 OR prefix = $1) AND tenant_id = $2")
            .bind(key.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&state.pool)
            .await?;
    let Some(found) = found else {
        return Err(Error::not_found("API key"));
    };
    let key: String = found.try_get(0)?;
    sqlx::query(
        "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
    )
    .bind(key.as_str())
    .bind(tenant.as_str())
    .bind(now_ms())
    .execute(&state.pool)
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
