//! The one error type of the HTTP edge: every rejection maps to its status here, once, with a
//! JSON body `{"error": {"code": "...", "message": "..."}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Unknown store or ingest key. Deliberately says nothing about which.
    #[error("not found")]
    NotFound,
    #[error("the request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// The adapter could not prove the notification authentic for this source.
    #[error("{0}")]
    Unauthenticated(String),
    /// A known source sent something unreadable; it is kept in the ledger as rejected.
    #[error("{0}")]
    Malformed(String),
    /// The body could not be read off the connection.
    #[error("cannot read the request body: {0}")]
    BadBody(String),
    /// Nothing was committed: the store must retry.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::Malformed(_) => "malformed",
            ApiError::BadBody(_) => "bad_request",
            ApiError::Unavailable(_) => "unavailable",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Malformed(_) | ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::Unavailable(_) = self {
            response.insert_header(("Retry-After", "1"));
        }
        response.json(json!({
            "error": { "code": self.code(), "message": self.to_string() }
        }))
    }
}
