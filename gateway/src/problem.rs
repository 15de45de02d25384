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

    /// 429 with `Retry-After`; `what` says what there were too many of.
    pub fn too_many_requests(what: &str, retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-attempts",
            format!("too many {what}; try again in {retry_after_secs} seconds"),
        )
        .retry_after(retry_after_secs)
    }

    /// Adds a `Retry-After` header (seconds).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_secs = Some(seconds);
        self
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
        let error_info = status.get_details_error_info();
        let http = match status.code() {
            Code::InvalidArgument | Code::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            // A limit of the caller's that a service names (`platform::grpc::limit_reached`)
            // is the client's to wait out; without a reason it is the transport's (a message
            // over a size limit, too many streams): the platform's fault, not the client's.
            Code::ResourceExhausted if error_info.is_some() => StatusCode::TOO_MANY_REQUESTS,
            Code::ResourceExhausted | Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded | Code::Cancelled => StatusCode::GATEWAY_TIMEOUT,
            // No service answers OUT_OF_RANGE for a client's input (that is INVALID_ARGUMENT);
            // tonic does, for a message over its decoding limit: an internal error.
            Code::Ok
            | Code::Unknown
            | Code::Internal
            | Code::Unimplemented
            | Code::DataLoss
            | Code::OutOfRange => StatusCode::INTERNAL_SERVER_ERROR,
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
        let kind = error_info
            .map(|info| info.reason)
            .unwrap_or_else(|| default_kind(http).to_owned());
        // HTTP has a status of its own for a stale `If-Match`, which gRPC's codes lack.
        let http = match kind.as_str() {
            "version-mismatch" => StatusCode::PRECONDITION_FAILED,
            _ => http,
        };
        let mut error = Self::new(http, &kind, status.message());
        if http == StatusCode::TOO_MANY_REQUESTS {
            // Whole seconds, rounded up, and at least one: `Retry-After: 0` invites a loop.
            let wait = status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay)
                .map_or(1, |delay| {
                    delay.as_secs() + u64::from(delay.subsec_nanos() > 0)
                });
            error.retry_after_secs = Some(wait.max(1));
        }
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
    fn a_message_over_the_size_limit_is_a_server_error_that_shows_nothing_of_tonic() {
        // What tonic answers when a message exceeds its decoding or encoding limit.
        for status in [
            tonic::Status::out_of_range(
                "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
            ),
            tonic::Status::resource_exhausted(
                "Error, encoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
            ),
        ] {
            let error = ApiError::from(status);
            assert!(error.problem.status >= 500, "{:?}", error.problem);
            assert!(
                !error.problem.detail.contains("bytes"),
                "{:?}",
                error.problem
            );
            assert_eq!(error.retry_after_secs, None);
        }
    }

    #[test]
    fn a_limit_a_service_names_is_429_with_retry_after() {
        let status = platform::grpc::limit_reached(
            "too-many-jobs",
            "you have 5 statement jobs pending or running",
            std::time::Duration::from_millis(10_500),
        );
        let error = ApiError::from(status);
        assert_eq!(error.problem.status, 429);
        assert_eq!(error.problem.kind, "/problems/too-many-jobs");
        assert_eq!(error.retry_after_secs, Some(11));
        let response = error.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "11");
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
            (Code::ResourceExhausted, 503),
            (Code::OutOfRange, 500),
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
