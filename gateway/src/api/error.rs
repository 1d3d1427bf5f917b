//! The management API's errors: `{"error": {"code": "...", "message": "...", "field": "..."}}`,
//! `field` present when one field of the request is at fault.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Every error answer's body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`, `invalid`,
    /// `conflict`, `unavailable`, `internal`, `method_not_allowed`.
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// The request field at fault (`url`, `limit`, `event_types[1]`, …), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A rejected management request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl Error {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Error {
        Error {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// `what` is the kind of resource, e.g. "tenant".
    pub fn not_found(what: &str) -> Error {
        Error::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    /// A field of the request is unusable.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            field: Some(field.into()),
            ..Error::new(StatusCode::BAD_REQUEST, "invalid", message)
        }
    }

    /// The request as a whole is unusable (unreadable JSON, a bad query string).
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            field: Some(field.into()),
            ..Error::new(StatusCode::CONFLICT, "conflict", message)
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal() -> Error {
        Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    pub fn method_not_allowed() -> Error {
        Error::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take this method",
        )
    }

    pub fn route_not_found() -> Error {
        Error::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Error {
        tracing::error!(%error, "Management API database error");
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Error::unavailable("the database is unavailable; retry")
            }
            _ => Error::internal(),
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("Retry-After", "1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        })
    }
}

/// `Result` of a handler.
pub type ApiResult<T> = Result<T, Error>;
