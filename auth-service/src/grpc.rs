//! The `auth.v1.AuthService` gRPC surface: parse the request, call the domain, map the result.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use platform::pagination::PageRequest;
use proto::auth::v1 as pb;
use proto::auth::v1::auth_service_server::AuthService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::access_token::{IssuedToken, TokenIssuer};
use crate::accounts::{self, User};
use crate::error::AuthError;
use crate::{refresh_tokens, revocations, signing_keys};

/// Most revocations handed out in one answer; the gateway asks again for the rest.
const REVOCATION_PAGE: i64 = 1000;

pub struct AuthApi {
    pub pool: PgPool,
    pub issuer: Arc<TokenIssuer>,
    pub admin_emails: Arc<[String]>,
    /// The longest a request waits for a password hashing slot.
    pub hash_wait: Duration,
    /// Lifetime of a refresh token.
    pub refresh_ttl: Duration,
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn sign_up(
        &self,
        request: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::SignUpResponse>, Status> {
        let request = request.into_inner();
        let (user, token) = accounts::sign_up(
            &self.pool,
            &self.issuer,
            &self.admin_emails,
            self.hash_wait,
            &request.email,
            &request.password,
        )
        .await?;
        let refresh = refresh_tokens::start(&self.pool, user.id, &token, self.refresh_ttl).await?;
        Ok(Response::new(pb::SignUpResponse {
            user: Some(user_message(user)),
            access_token: Some(token_message(token)),
            refresh_token: refresh.token,
        }))
    }

    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        let request = request.into_inner();
        let (user_id, token) = accounts::sign_in(
            &self.pool,
            &self.issuer,
            &self.admin_emails,
            self.hash_wait,
            &request.email,
            &request.password,
        )
        .await?;
        let refresh = refresh_tokens::start(&self.pool, user_id, &token, self.refresh_ttl).await?;
        Ok(Response::new(pb::SignInResponse {
            access_token: Some(token_message(token)),
            refresh_token: refresh.token,
        }))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshResponse>, Status> {
        let (token, refresh) = refresh_tokens::refresh(
            &self.pool,
            &self.issuer,
            &self.admin_emails,
            self.refresh_ttl,
            &request.into_inner().refresh_token,
        )
        .await?;
        Ok(Response::new(pb::RefreshResponse {
            access_token: Some(token_message(token)),
            refresh_token: refresh.token,
        }))
    }

    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        let request = request.into_inner();
        let jti = parse_uuid("jti", &request.jti)?;
        let expires_at = request
            .expires_at
            .and_then(|at| DateTime::from_timestamp(at.seconds, 0))
            .ok_or_else(|| AuthError::Invalid(vec![("expires_at", "is required".into())]))?;
        revocations::revoke(&self.pool, jti, expires_at)
            .await
            .map_err(AuthError::from)?;
        refresh_tokens::revoke_family_of(&self.pool, jti).await?;
        Ok(Response::new(pb::SignOutResponse {}))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let user_id = parse_uuid("user_id", &request.into_inner().user_id)?;
        let user = accounts::find_user(&self.pool, user_id).await?;
        Ok(Response::new(user_message(user)))
    }

    async fn get_verification_keys(
        &self,
        _request: Request<pb::GetVerificationKeysRequest>,
    ) -> Result<Response<pb::GetVerificationKeysResponse>, Status> {
        let keys = signing_keys::public_keys(&self.pool)
            .await
            .map_err(AuthError::from)?;
        Ok(Response::new(pb::GetVerificationKeysResponse {
            keys: keys
                .into_iter()
                .map(|key| pb::VerificationKey {
                    kid: key.kid,
                    algorithm: pb::SigningAlgorithm::Eddsa.into(),
                    public_key: key.bytes,
                })
                .collect(),
            issuer: self.issuer.issuer().to_owned(),
            audience: self.issuer.audience().to_owned(),
        }))
    }

    async fn list_revoked_tokens(
        &self,
        request: Request<pb::ListRevokedTokensRequest>,
    ) -> Result<Response<pb::ListRevokedTokensResponse>, Status> {
        let request = request.into_inner();
        let message = |token: revocations::RevokedToken| pb::RevokedToken {
            seq: token.seq,
            jti: token.jti.to_string(),
            expires_at: Some(platform::timestamp::to_proto(token.expires_at)),
        };
        let Some(cursor) = request.cursor else {
            // A gateway from before the commit-ordered cursor (a rolling upgrade).
            let tokens =
                revocations::list_after_seq(&self.pool, request.after_seq, REVOCATION_PAGE)
                    .await
                    .map_err(AuthError::from)?;
            return Ok(Response::new(pb::ListRevokedTokensResponse {
                tokens: tokens.into_iter().map(message).collect(),
                next_cursor: None,
                more: false,
            }));
        };
        let after = revocations::Cursor {
            txid: cursor.txid,
            seq: cursor.seq,
        };
        let page = revocations::list_after(&self.pool, after, REVOCATION_PAGE)
            .await
            .map_err(AuthError::from)?;
        Ok(Response::new(pb::ListRevokedTokensResponse {
            tokens: page.tokens.into_iter().map(message).collect(),
            next_cursor: Some(pb::RevocationCursor {
                txid: page.next.txid,
                seq: page.next.seq,
            }),
            more: page.more,
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let request = request.into_inner();
        let (q, page) =
            PageRequest::parse_search(request.q, 254, request.limit, request.cursor.as_deref())
                .map_err(AuthError::Invalid)?;
        let (users, next_cursor) = accounts::list_users(&self.pool, q.as_deref(), &page).await?;
        Ok(Response::new(pb::ListUsersResponse {
            items: users.into_iter().map(user_message).collect(),
            next_cursor,
        }))
    }
}

fn parse_uuid(field: &'static str, raw: &str) -> Result<Uuid, AuthError> {
    Uuid::parse_str(raw).map_err(|_| AuthError::Invalid(vec![(field, "must be a UUID".into())]))
}

fn user_message(user: User) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email,
        roles: user.roles.into_iter().map(i32::from).collect(),
        created_at: Some(platform::timestamp::to_proto(user.created_at)),
    }
}

fn token_message(token: IssuedToken) -> pb::AccessToken {
    pb::AccessToken {
        token: token.token,
        token_type: "Bearer".into(),
        expires_in: token.expires_in,
    }
}
