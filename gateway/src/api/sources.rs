//! A tenant's sources (store connections): create (the answer holds the ingest URL), list, get,
//! update allow-lists, enable/disable, rotate the RuStore key. Credentials are never answered.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::sql::TenantTable;
use super::{ApiResult, ApiState, Error, PageQuery, auth, created, resource, resource_id, time};
use crate::configuration::{Credentials, Secret};
use crate::ledger::now_ms;
use crate::ledger::registry::{credentials_json, ingest_key_hash};

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            resource("/sources")
                .route(web::post().to(create_source))
                .route(web::get().to(list_sources)),
        )
        .service(
            resource("/sources/{source_id}")
                .route(web::get().to(get_source))
                .route(web::patch().to(update_source)),
        )
        .service(resource("/sources/{source_id}/rotate-key").route(web::post().to(rotate_key)))
        .service(
            resource("/sources/{source_id}/previous-key")
                .route(web::delete().to(remove_previous_key)),
        );
}

/// A source as answered: never its credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct Source {
    pub id: String,
    /// `rustore` or `autodesk`.
    pub store: String,
    /// A disabled source's notifications are answered 404.
    pub enabled: bool,
    /// RuStore settings (`store = rustore`).
    pub rustore: Option<RuStoreSettings>,
    /// Autodesk allow-lists (`store = autodesk`).
    pub autodesk: Option<AutodeskSettings>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuStoreSettings {
    /// Notifications for another app (or naming none) are rejected when set.
    pub app_id: Option<String>,
    /// Whether the key before the last rotation is still accepted.
    pub has_previous_key: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutodeskSettings {
    pub receiver_emails: Vec<String>,
    pub receiver_ids: Vec<String>,
    pub app_ids: Vec<String>,
}

crate::api_list!(SourceList, Source);

/// A new source: the only answer holding its ingest key.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedSource {
    #[serde(flatten)]
    pub source: Source,
    /// The secret part of the ingest URL; not shown again.
    pub ingest_key: String,
    /// Paste it into the store console: `<api.public_url>/ingest/<store>/<ingest_key>`.
    pub ingest_url: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// 1 to 64 of `[a-z0-9_-]`; generated (`src_…`) when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// `rustore` or `autodesk`.
    pub store: String,
    /// RuStore: the AES-256 key from RuStore Console (base64 of 32 bytes).
    #[serde(default)]
    pub key: Option<String>,
    /// RuStore: the Console app id (a string or a number).
    #[serde(default, deserialize_with = "string_or_number")]
    #[schema(value_type = Option<String>)]
    pub app_id: Option<String>,
    /// Autodesk: the PayPal e-mails notifications must be addressed to.
    #[serde(default)]
    pub receiver_emails: Option<Vec<String>>,
    /// Autodesk: the PayPal merchant ids.
    #[serde(default)]
    pub receiver_ids: Option<Vec<String>>,
    /// Autodesk: the app ids.
    #[serde(default)]
    pub app_ids: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Only the fields given change; `app_id: null` removes the RuStore app id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSource {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "present_string_or_number")]
    #[schema(value_type = Option<String>)]
    pub app_id: Option<Option<String>>,
    #[serde(default)]
    pub receiver_emails: Option<Vec<String>>,
    #[serde(default)]
    pub receiver_ids: Option<Vec<String>>,
    #[serde(default)]
    pub app_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// The new AES-256 key from RuStore Console (base64 of 32 bytes). The current key becomes the
    /// previous key, still accepted until removed.
    pub key: String,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(serde::de::Error::custom(
            "app_id: expected a string or a number",
        )),
    }
}

fn present_string_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    string_or_number(d).map(Some)
}

fn check_list(field: &str, values: &[String]) -> ApiResult<()> {
    if values.len() > 100 {
        return Err(Error::invalid(field, "at most 100 values"));
    }
    for (i, value) in values.iter().enumerate() {
        if value.trim().is_empty() || value.len() > 320 {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                "must be 1 to 320 characters",
            ));
        }
    }
    Ok(())
}

fn check_app_id(app_id: &Option<String>) -> ApiResult<()> {
    match app_id {
        Some(id) if id.trim().is_empty() || id.len() > 100 => {
            Err(Error::invalid("app_id", "must be 1 to 100 characters"))
        }
        _ => Ok(()),
    }
}

/// Validate credentials as the adapter will use them; errors name the field.
fn check_credentials(credentials: &Credentials) -> ApiResult<()> {
    credentials
        .adapter_config()
        .map(|_| ())
        .map_err(|(field, message)| Error::invalid(field, message))
}

struct StoredSource {
    id: String,
    store: String,
    credentials: Credentials,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl StoredSource {
    fn view(&self) -> Source {
        let (rustore, autodesk) = match &self.credentials {
            Credentials::RuStore {
                previous_key,
                app_id,
                ..
            } => (
                Some(RuStoreSettings {
                    app_id: app_id.clone(),
                    has_previous_key: previous_key.is_some(),
                }),
                None,
            ),
            Credentials::Autodesk {
                receiver_emails,
                receiver_ids,
                app_ids,
            } => (
                None,
                Some(AutodeskSettings {
                    receiver_emails: receiver_emails.clone(),
                    receiver_ids: receiver_ids.clone(),
                    app_ids: app_ids.clone(),
                }),
            ),
        };
        Source {
            id: self.id.clone(),
            store: self.store.clone(),
            enabled: self.enabled,
            rustore,
            autodesk,
            created_at: time(self.created_at),
            updated_at: time(self.updated_at),
        }
    }
}

const TABLE: TenantTable = TenantTable {
    name: "sources",
    columns: "id, store, credentials, enabled, created_at, updated_at",
};

fn parse_row(row: &sqlx::any::AnyRow) -> ApiResult<StoredSource> {
    let id: String = row.try_get(0)?;
    let credentials: String = row.try_get(2)?;
    let credentials: Credentials = serde_json::from_str(&credentials).map_err(|error| {
        tracing::error!(source = %id, %error, "Unreadable source credentials");
        Error::internal()
    })?;
    let enabled: i64 = row.try_get(3)?;
    Ok(StoredSource {
        id,
        store: row.try_get(1)?,
        credentials,
        enabled: enabled != 0,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
    })
}

async fn find(state: &ApiState, tenant: &str, id: &str) -> ApiResult<StoredSource> {
    match TABLE.row(state, tenant, id).await? {
        Some(row) => parse_row(&row),
        None => Err(Error::not_found("source")),
    }
}

/// Store a changed source, stamped with the time of the change, and answer it.
async fn save_and_answer(
    state: &ApiState,
    tenant: &str,
    mut row: StoredSource,
) -> ApiResult<HttpResponse> {
    row.updated_at = now_ms();
    sqlx::query(
        "UPDATE sources SET credentials = $3, enabled = $4, updated_at = $5 \
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(row.id.as_str())
    .bind(tenant)
    .bind(credentials_json(&row.credentials))
    .bind(i64::from(row.enabled))
    .bind(row.updated_at)
    .execute(&state.pool)
    .await?;
    Ok(HttpResponse::Ok().json(row.view()))
}

/// Create a source; the answer holds its ingest key and URL, once.
#[utoipa::path(post, path = "/v1/sources", tag = "sources", request_body = CreateSource,
    responses(
        (status = 201, description = "Created; `ingest_key` and `ingest_url` are shown this once", body = CreatedSource),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_source(
    request: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Json<CreateSource>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let body = body.into_inner();
    let id = resource_id("id", body.id.as_deref(), "src")?;
    let not_for = |field: &str, store: &str| {
        Error::invalid(field, format!("not a setting of a {store} source"))
    };
    let credentials = match body.store.as_str() {
        "rustore" => {
            for (field, given) in [
                ("receiver_emails", body.receiver_emails.is_some()),
                ("receiver_ids", body.receiver_ids.is_some()),
                ("app_ids", body.app_ids.is_some()),
            ] {
                if given {
                    return Err(not_for(field, "rustore"));
                }
            }
            let Some(key) = body.key else {
                return Err(Error::invalid(
                    "key",
                    "required: the AES-256 key from RuStore Console (base64 of 32 bytes)",
                ));
            };
            check_app_id(&body.app_id)?;
            Credentials::RuStore {
                key: Secret::new(key),
                previous_key: None,
                app_id: body.app_id,
            }
        }
        "autodesk" => {
            if body.key.is_some() {
                return Err(not_for("key", "autodesk"));
            }
            if body.app_id.is_some() {
                return Err(not_for("app_id", "autodesk"));
            }
            let receiver_emails = body.receiver_emails.unwrap_or_default();
            let receiver_ids = body.receiver_ids.unwrap_or_default();
            let app_ids = body.app_ids.unwrap_or_default();
            check_list("receiver_emails", &receiver_emails)?;
            check_list("receiver_ids", &receiver_ids)?;
            check_list("app_ids", &app_ids)?;
            Credentials::Autodesk {
                receiver_emails,
                receiver_ids,
                app_ids,
            }
        }
        _ => {
            return Err(Error::invalid(
                "store",
                "must be \"rustore\" or \"autodesk\"",
            ));
        }
    };
    check_credentials(&credentials)?;
    let store = credentials.store().as_str().to_owned();
    let ingest_key = crate::cli::new_ingest_key();
    let now = now_ms();
    let enabled = body.enabled.unwrap_or(true);
    let inserted = sqlx::query(
        "INSERT INTO sources \
         (id, tenant_id, store, ingest_key_hash, credentials, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
    .bind(store.as_str())
    .bind(ingest_key_hash(&ingest_key))
    .bind(credentials_json(&credentials))
    .bind(i64::from(enabled))
    .bind(now)
    .execute(&state.pool)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if super::is_unique_violation(&e) => {
            return Err(Error::conflict("id", "a source with this id exists"));
        }
        Err(e) => return Err(e.into()),
    }
    let row = StoredSource {
        id,
        store: store.clone(),
        credentials,
        enabled,
        created_at: now,
        updated_at: now,
    };
    let ingest_url = format!("{}/ingest/{store}/{ingest_key}", state.public_url);
    Ok(created(&CreatedSource {
        source: row.view(),
        ingest_key,
        ingest_url,
    }))
}

/// List the tenant's sources, by id.
#[utoipa::path(get, path = "/v1/sources", tag = "sources", params(PageQuery),
    responses(
        (status = 200, description = "A page of sources", body = SourceList),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_sources(
    request: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let (rows, next_cursor) = TABLE
        .page_by_id(&state, &tenant, &query, parse_row, |row| row.id.as_str())
        .await?;
    Ok(HttpResponse::Ok().json(SourceList {
        data: rows.iter().map(StoredSource::view).collect(),
        next_cursor,
    }))
}

/// Get one of the tenant's sources.
#[utoipa::path(get, path = "/v1/sources/{source_id}", tag = "sources",
    params(("source_id" = String, Path, description = "The source's id")),
    responses(
        (status = 200, description = "The source", body = Source),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such source", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_source(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    Ok(HttpResponse::Ok().json(find(&state, &tenant, &path).await?.view()))
}

/// Update a source's allow-lists or app id, or enable/disable it. Ingest sees the change once its
/// source cache expires (`ingest.source_cache_ms`).
#[utoipa::path(patch, path = "/v1/sources/{source_id}", tag = "sources",
    params(("source_id" = String, Path, description = "The source's id")),
    request_body = UpdateSource,
    responses(
        (status = 200, description = "The updated source", body = Source),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such source", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn update_source(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<UpdateSource>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let body = body.into_inner();
    let mut row = find(&state, &tenant, &path).await?;
    if let Some(enabled) = body.enabled {
        row.enabled = enabled;
    }
    match &mut row.credentials {
        Credentials::RuStore { app_id, .. } => {
            for (field, given) in [
                ("receiver_emails", body.receiver_emails.is_some()),
                ("receiver_ids", body.receiver_ids.is_some()),
                ("app_ids", body.app_ids.is_some()),
            ] {
                if given {
                    return Err(Error::invalid(field, "not a setting of a rustore source"));
                }
            }
            if let Some(new) = body.app_id {
                check_app_id(&new)?;
                *app_id = new;
            }
        }
        Credentials::Autodesk {
            receiver_emails,
            receiver_ids,
            app_ids,
        } => {
            if body.app_id.is_some() {
                return Err(Error::invalid(
                    "app_id",
                    "not a setting of an autodesk source (use app_ids)",
                ));
            }
            for (field, new, old) in [
                ("receiver_emails", body.receiver_emails, receiver_emails),
                ("receiver_ids", body.receiver_ids, receiver_ids),
                ("app_ids", body.app_ids, app_ids),
            ] {
                if let Some(new) = new {
                    check_list(field, &new)?;
                    *old = new;
                }
            }
        }
    }
    check_credentials(&row.credentials)?;
    save_and_answer(&state, &tenant, row).await
}

/// Rotate a RuStore source's key: the new key becomes current, the current one the previous key
/// (still accepted until removed with `DELETE /v1/sources/{source_id}/previous-key`).
#[utoipa::path(post, path = "/v1/sources/{source_id}/rotate-key", tag = "sources",
    params(("source_id" = String, Path, description = "The source's id")),
    request_body = RotateKey,
    responses(
        (status = 200, description = "The source, with `has_previous_key` true", body = Source),
        (status = 400, description = "Invalid key, or not a RuStore source", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such source", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn rotate_key(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<RotateKey>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let mut row = find(&state, &tenant, &path).await?;
    match &mut row.credentials {
        Credentials::RuStore {
            key, previous_key, ..
        } => {
            let new = Secret::new(body.into_inner().key);
            storehook_adapters::rustore::AesKey::parse(new.expose())
                .map_err(|e| Error::invalid("key", e.message))?;
            *previous_key = Some(std::mem::replace(key, new));
        }
        Credentials::Autodesk { .. } => {
            return Err(Error::invalid(
                "key",
                "an autodesk source has no key to rotate",
            ));
        }
    }
    check_credentials(&row.credentials)?;
    save_and_answer(&state, &tenant, row).await
}

/// Stop accepting a RuStore source's previous key.
#[utoipa::path(delete, path = "/v1/sources/{source_id}/previous-key", tag = "sources",
    params(("source_id" = String, Path, description = "The source's id")),
    responses(
        (status = 200, description = "The source, with `has_previous_key` false", body = Source),
        (status = 400, description = "Not a RuStore source", body = ErrorBody),
        (status = 401, description = "Missing or wrong key", body = ErrorBody),
        (status = 403, description = "Not a tenant key", body = ErrorBody),
        (status = 404, description = "No such source", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn remove_previous_key(
    request: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let tenant = auth::tenant(&request, &state).await?;
    let mut row = find(&state, &tenant, &path).await?;
    match &mut row.credentials {
        Credentials::RuStore { previous_key, .. } => *previous_key = None,
        Credentials::Autodesk { .. } => {
            return Err(Error::invalid(
                "store",
                "an autodesk source has no previous key",
            ));
        }
    }
    save_and_answer(&state, &tenant, row).await
}
