//! Errors as RFC 9457 problem details (`application/problem+json`), and the one place where
//! gRPC statuses become HTTP statuses.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt;
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem details body.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/problems/validation-failed",
    "title": "Unprocessable Entity",
    "status": 422,
    "detail": "password: must be at least 8 characters",
    "errors": {"password": ["must be at least 8 characters"]}
}))]
pub struct Problem {
    /// A URI reference naming the kind of problem: `/problems/<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP reason phrase of `status`.
    pub title: String,
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
    /// Field name → messages, for validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
}

/// An error answer: a problem plus the headers some statuses need.
#[derive(Debug)]
pub struct ApiError {
    /// Boxed: errors travel in `Result`s on every request path, keep them small.
    pub problem: Box<Problem>,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            problem: Box::new(Problem {
                kind: format!("/problems/{kind}"),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                errors: None,
            }),
            retry_after_secs: None,
        }
    }

    /// A validation failure of one field (422, with `errors`).
    pub fn invalid(field: &str, message: &str) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            format!("{field}: {message}"),
        );
        error.problem.errors = Some([(field.to_owned(), vec![message.to_owned()])].into());
        error
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            format!("too many failed sign-ins; try again in {retry_after_secs} seconds"),
        );
        error.retry_after_secs = Some(retry_after_secs);
        error
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(*self.problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// gRPC status → HTTP status, in one place. The service's `ErrorInfo` reason becomes the
/// problem type and its `BadRequest` violations the `errors` map; an internal error's
/// message never reaches the client.
impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let http = match status.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded | Code::Cancelled => StatusCode::GATEWAY_TIMEOUT,
            Code::Ok | Code::Unknown | Code::Internal | Code::Unimplemented | Code::DataLoss => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if http.is_server_error() {
            tracing::error!(code = ?status.code(), message = status.message(), "service call failed");
            return match http {
                StatusCode::SERVICE_UNAVAILABLE => Self::new(
                    http,
                    "service-unavailable",
                    "a service is unavailable; try again shortly",
                ),
                StatusCode::GATEWAY_TIMEOUT => {
                    Self::new(http, "timeout", "a service did not answer in time")
                }
                _ => Self::new(http, "internal", "an internal error occurred"),
            };
        }
        let kind = status
            .get_details_error_info()
            .map(|info| info.reason)
            .unwrap_or_else(|| default_kind(http).to_owned());
        // HTTP has a status of its own for a stale `If-Match`, which gRPC's codes lack.
        let http = match kind.as_str() {
            "version-mismatch" => StatusCode::PRECONDITION_FAILED,
            _ => http,
        };
        let mut error = Self::new(http, &kind, status.message());
        if let Some(bad_request) = status.get_details_bad_request() {
            let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for violation in bad_request.field_violations {
                errors
                    .entry(violation.field)
                    .or_default()
                    .push(violation.description);
            }
            error.problem.errors = Some(errors);
        }
        error
    }
}

fn default_kind(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => "validation-failed",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::TOO_MANY_REQUESTS => "too-many-requests",
        _ => "error",
    }
}

/// Turns the bare error answers the framework and middleware produce (unknown route, wrong
/// method, timeout, ...) into problem details, so every error a client sees has one shape.
pub async fn fill_bare_errors(response: Response) -> Response {
    let status = response.status();
    let bare = (status.is_client_error() || status.is_server_error())
        && !response.headers().contains_key(header::CONTENT_TYPE);
    if !bare {
        return response;
    }
    let (kind, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "this method is not allowed here"),
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
            ("timeout", "the request took too long")
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "the request body is too large"),
        _ => ("error", status.canonical_reason().unwrap_or("error")),
    };
    let mut problem = ApiError::new(status, kind, detail).into_response();
    // Keep headers such as `Allow` on a 405.
    for (name, value) in response.headers() {
        problem
            .headers_mut()
            .entry(name)
            .or_insert_with(|| value.clone());
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn grpc_validation_errors_become_422_with_field_errors() {
        let mut details = ErrorDetails::with_error_info(
            "validation-failed",
            "x",
            std::collections::HashMap::<String, String>::new(),
        );
        details.set_bad_request(vec![FieldViolation::new("password", "too short")]);
        let status = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "password: too short",
            details,
        );
        let error = ApiError::from(status);
        assert_eq!(error.problem.status, 422);
        assert_eq!(error.problem.kind, "/problems/validation-failed");
        assert_eq!(
            error.problem.errors.unwrap()["password"],
            vec!["too short".to_owned()]
        );
    }

    #[test]
    fn internal_errors_do_not_leak_their_message() {
        let error = ApiError::from(tonic::Status::internal(
            "connection string postgres://secret",
        ));
        assert_eq!(error.problem.status, 500);
        assert!(!error.problem.detail.contains("secret"));
    }

    #[test]
    fn each_grpc_code_maps_to_its_http_status() {
        let cases = [
            (Code::InvalidArgument, 422),
            (Code::FailedPrecondition, 422),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
        ];
        for (code, http) in cases {
            assert_eq!(
                ApiError::from(tonic::Status::new(code, "x")).problem.status,
                http,
                "{code:?}"
            );
        }
    }
}
