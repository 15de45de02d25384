//! Sign-up, sign-in and account look-up.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::pagination::{PageRequest, contains_pattern};
use proto::Role;
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use crate::access_token::{IssuedToken, TokenIssuer};
use crate::email::Email;
use crate::error::AuthError;
use crate::password::{self, Password};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
}

/// Creates an account and signs its first token. Waits at most `hash_wait` for a hashing
/// slot.
pub async fn sign_up(
    pool: &PgPool,
    issuer: &TokenIssuer,
    admin_emails: &[String],
    hash_wait: Duration,
    raw_email: &str,
    raw_password: &str,
) -> Result<(User, IssuedToken), AuthError> {
    let (email, password) = match (Email::parse(raw_email), Password::parse(raw_password)) {
        (Ok(email), Ok(password)) => (email, password),
        (email, password) => {
            let mut violations = Vec::new();
            if let Err(reason) = email {
                violations.push(("email", reason));
            }
            if let Err(reason) = password {
                violations.push(("password", reason));
            }
            return Err(AuthError::Invalid(violations));
        }
    };
    let roles = roles_of(email.as_str(), admin_emails);
    let password_hash = password::hash(password, hash_wait).await?;
    let inserted = sqlx::query_as::<_, User>(
        "insert into users (id, email, password_hash, roles) values ($1, $2, $3, $4)
         returning id, email, roles, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(email.as_str())
    .bind(password_hash)
    .bind(&roles)
    .fetch_one(pool)
    .await;
    let user = match inserted {
        Ok(user) => user,
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            return Err(AuthError::EmailTaken);
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(user_id = %user.id, "account created");
    let token = issuer.issue(user.id, &user.roles, Utc::now())?;
    Ok((user, token))
}

/// Checks an email and password and signs a token for the user it returns. A wrong password and an unknown (or
/// malformed) email give the same error after the same amount of work.
///
/// The roles are worked out again from `admin_emails` at every sign-in and stored when they
/// changed, so removing an address from `ADMIN_EMAILS` takes the role away at the next
/// sign-in (tokens signed before keep their roles until they expire).
pub async fn sign_in(
    pool: &PgPool,
    issuer: &TokenIssuer,
    admin_emails: &[String],
    hash_wait: Duration,
    raw_email: &str,
    raw_password: &str,
) -> Result<(Uuid, IssuedToken), AuthError> {
    let account: Option<(Uuid, String, Vec<Role>, String)> = match Email::parse(raw_email) {
        Ok(email) => {
            sqlx::query_as("select id, email, roles, password_hash from users where email = $1")
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?
        }
        Err(_) => None,
    };
    let stored_hash = account
        .as_ref()
        .map(|(_, _, _, hash)| Arc::<str>::from(hash.as_str()));
    let candidate = SecretString::from(raw_password);
    let matches = password::verify(candidate, stored_hash, hash_wait).await?;
    let Some((user_id, email, stored_roles, _)) = account.filter(|_| matches) else {
        return Err(AuthError::InvalidCredentials);
    };
    let roles = roles_of(&email, admin_emails);
    if roles != stored_roles {
        sqlx::query("update users set roles = $2 where id = $1")
            .bind(user_id)
            .bind(&roles)
            .execute(pool)
            .await?;
        tracing::info!(%user_id, ?roles, "roles changed with ADMIN_EMAILS");
    }
    Ok((user_id, issuer.issue(user_id, &roles, Utc::now())?))
}

/// `customer` for everyone, and `admin` for the (lowercased) emails in `admin_emails`.
pub(crate) fn roles_of(email: &str, admin_emails: &[String]) -> Vec<Role> {
    let mut roles = vec![Role::Customer];
    if admin_emails.iter().any(|admin| admin == email) {
        roles.push(Role::Admin);
    }
    roles
}

pub async fn find_user(pool: &PgPool, user_id: Uuid) -> Result<User, AuthError> {
    sqlx::query_as("select id, email, roles, created_at from users where id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?
        .ok_or(AuthError::UserNotFound)
}

/// One page of accounts, newest first, whose email contains `q` (any case), and the next
/// page's cursor.
pub async fn list_users(
    pool: &PgPool,
    q: Option<&str>,
    page: &PageRequest,
) -> Result<(Vec<User>, Option<String>), AuthError> {
    // Emails are stored lowercased.
    let pattern = q.map(|q| contains_pattern(&q.to_lowercase()));
    let (users, next) = page
        .fetch_page(
            sqlx::query_as(
                "select id, email, roles, created_at from users
              where ($1::text is null or email like $1)
                and ($2::timestamptz is null or (created_at, id) < ($2, $3))
              order by created_at desc, id desc
              limit $4",
            )
            .bind(pattern),
            pool,
            |user: &User| (user.created_at, user.id),
        )
        .await?;
    Ok((users, next))
}
