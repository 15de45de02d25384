//! `/auth/*`: accounts and tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Role;

/// Email and password.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ann@example.org", "password": "correct horse battery"}))]
pub struct Credentials {
    /// Case-insensitive; stored lowercased.
    pub email: String,
    /// At least 8 characters.
    #[schema(format = Password, min_length = 8)]
    pub password: String,
}

/// Never prints the password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0192f0c1-7c1e-7d2a-9a51-6c7c0b8f4e21",
    "email": "ann@example.org",
    "roles": ["customer"],
    "created_at": "2026-11-21T18:00:00Z"
}))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    /// `customer` for everyone, plus `admin` for the emails in `ADMIN_EMAILS`.
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9...", "token_type": "Bearer", "expires_in": 900, "refresh_token": "q3Jw6oVd0y2yQm3bYQ0m2Xo5Y0s7Qv6wH8b4cTqfE1k"}))]
pub struct AccessToken {
    /// A JWT (EdDSA) to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// Opaque and single use: exchange it at `POST /auth/refresh` for a new pair before or
    /// after the access token expires. Keep it secret; it lives 30 days by default.
    pub refresh_token: String,
}

/// Never prints the tokens.
impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SignedUp {
    pub user: User,
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    /// As in [`AccessToken`].
    pub refresh_token: String,
}

/// A refresh token to exchange.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The `refresh_token` of the last sign-in, sign-up or refresh.
    pub refresh_token: String,
}
