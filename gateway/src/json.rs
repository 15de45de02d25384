//! A JSON body extractor whose rejections are problem details with a useful `detail`:
//! 400 malformed JSON, 413 body over the limit, 415 wrong content type, 422 a missing or
//! mistyped field.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::problem::ApiError;

/// Largest request body the gateway reads.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(problem_for(&rejection)),
        }
    }
}

fn problem_for(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let kind = match status {
        StatusCode::BAD_REQUEST => "malformed-json",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "validation-failed",
        _ => "bad-request",
    };
    let detail = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a request body with `Content-Type: application/json`".to_owned()
        }
        JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {BODY_LIMIT_BYTES} bytes")
        }
        other => other.body_text(),
    };
    ApiError::new(status, kind, detail)
}
