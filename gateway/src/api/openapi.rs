//! The OpenAPI 3 document of the management API, generated from the handlers' annotations and
//! served at `GET /openapi.json` (no key needed).

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{deliveries, endpoints, error, events, sources, tenants};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "storehook management API",
        description = "Tenants, sources, endpoints, events and deliveries. \
            Authorization: Bearer <key> (the admin key for tenants and their API keys, a tenant \
            API key for everything else). Errors: {\"error\": {\"code\", \"message\", \"field\"}}. \
            Lists: limit (1-100) and cursor, answering {\"data\": [...], \"next_cursor\": ...}."
    ),
    paths(
        tenants::create_tenant,
        tenants::list_tenants,
        tenants::get_tenant,
        tenants::delete_tenant,
        tenants::create_api_key,
        tenants::list_api_keys,
        tenants::revoke_api_key,
        sources::create_source,
        sources::list_sources,
        sources::get_source,
        sources::update_source,
        sources::rotate_key,
        sources::remove_previous_key,
        endpoints::create_endpoint,
        endpoints::list_endpoints,
        endpoints::get_endpoint,
        endpoints::update_endpoint,
        endpoints::delete_endpoint,
        endpoints::rotate_secret,
        endpoints::ping,
        events::list_events,
        events::get_event,
        deliveries::event_deliveries,
        deliveries::event_attempts,
        deliveries::replay,
        deliveries::endpoint_attempts,
        deliveries::endpoint_deliveries,
        deliveries::recover,
    ),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        tenants::Tenant,
        tenants::TenantList,
        tenants::CreateTenant,
        tenants::ApiKey,
        tenants::ApiKeyList,
        tenants::CreatedApiKey,
        tenants::CreateApiKey,
        sources::Source,
        sources::SourceList,
        sources::CreatedSource,
        sources::CreateSource,
        sources::UpdateSource,
        sources::RotateKey,
        sources::RuStoreSettings,
        sources::AutodeskSettings,
        endpoints::Endpoint,
        endpoints::EndpointList,
        endpoints::EndpointWithSecret,
        endpoints::CreateEndpoint,
        endpoints::UpdateEndpoint,
        endpoints::RotateSecret,
        endpoints::PingSent,
        events::EventSummary,
        events::EventList,
        events::EventDetail,
        events::Notification,
        deliveries::Attempt,
        deliveries::AttemptList,
        deliveries::Delivery,
        deliveries::DeliveryList,
        deliveries::Replay,
        deliveries::Replayed,
        deliveries::Recover,
        deliveries::Recovered,
    )),
    modifiers(&Bearer),
    tags(
        (name = "tenants", description = "Tenants and their API keys (admin key)"),
        (name = "sources", description = "Store connections"),
        (name = "endpoints", description = "Webhook destinations"),
        (name = "events", description = "The ledger's events"),
        (name = "deliveries", description = "Webhook deliveries, attempts, replay and recovery"),
    )
)]
pub struct ApiDoc;

#[derive(Debug)]
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_owned())
}

/// `GET /openapi.json`.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}
