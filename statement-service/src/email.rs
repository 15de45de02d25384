//! Emailing finished statements (when `SMTP_URL` is set), from the `statement.emails` queue.
//!
//! A finished job queues an email message through the outbox in the same transaction that
//! marks it done, so no email is forgotten; the worker looks up the user's address at
//! auth-service, attaches the CSV and sends it. Delivery is at least once: the message id is
//! recorded after the SMTP server accepted the email.

use lapin::message::Delivery;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use platform::config::ConfigError;
use platform::consumer::{Handler, Verdict};
use platform::grpc::WithInternalToken;
use proto::JobStatus;
use proto::auth::v1::GetUserRequest;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::jobs::{self, Job};

pub use proto::messaging::statement::EMAILS;

/// Where and as whom to send.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `SMTP_URL`, which may hold a password: `smtp://host[:port]` (plain, port 25 by
    /// default), `smtp://host?tls=required` (STARTTLS, port 587) or `smtps://host` (TLS,
    /// port 465), with `user:password@` for authentication. lettre reads it.
    pub url: SecretString,
    pub from: Mailbox,
}

impl SmtpSettings {
    /// `SMTP_URL` as lettre reads it, and `SMTP_FROM` as an address.
    pub fn parse(url: &str, from: &str) -> Result<Self, ConfigError> {
        // The error is lettre's, which may quote the URL: only its kind is told.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|_| {
            ConfigError::new(
                "SMTP_URL",
                "must be smtp://host[:port], smtp://host?tls=required or smtps://host, \
                 with user:password@ for authentication",
            )
        })?;
        let from = from.parse().map_err(|error| {
            ConfigError::new("SMTP_FROM", format!("is not an email address: {error}"))
        })?;
        Ok(Self {
            url: SecretString::from(url),
            from,
        })
    }

    /// The transport to the server (the URL was checked when the settings were read).
    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        Ok(
            AsyncSmtpTransport::<Tokio1Executor>::from_url(self.url.expose_secret())
                .map_err(|_| anyhow::anyhow!("SMTP_URL is not a valid SMTP URL"))?
                .timeout(Some(std::time::Duration::from_secs(30)))
                .build(),
        )
    }
}

pub type AuthClient = AuthServiceClient<InterceptedService<Channel, WithInternalToken>>;

pub struct EmailHandler {
    pub pool: PgPool,
    pub smtp: SmtpSettings,
    pub transport: AsyncSmtpTransport<Tokio1Executor>,
    pub auth: AuthClient,
}

impl EmailHandler {
    pub fn new(pool: PgPool, smtp: SmtpSettings, auth: AuthClient) -> anyhow::Result<Self> {
        let transport = smtp.transport()?;
        Ok(Self {
            pool,
            smtp,
            transport,
            auth,
        })
    }
}

impl Handler for EmailHandler {
    async fn handle(&self, delivery: &Delivery) -> anyhow::Result<Verdict> {
        let job_id = match jobs::job_id(delivery) {
            Ok(id) => id,
            Err(reason) => return Ok(Verdict::Invalid(reason)),
        };
        let message_id = recorded_id(job_id);
        let already = platform::inbox::contains(&self.pool, &message_id).await?;
        if already {
            return Ok(Verdict::Done);
        }
        let job = jobs::get(&self.pool, job_id).await?;
        let Some(job) = job.filter(|job| job.status == JobStatus::Done) else {
            return Ok(Verdict::Invalid(format!(
                "job {job_id} is not a finished job"
            )));
        };
        let user = match self
            .auth
            .clone()
            .get_user(GetUserRequest {
                user_id: job.user_id.to_string(),
            })
            .await
        {
            Ok(user) => user.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Ok(Verdict::Invalid(format!(
                    "user {} does not exist",
                    job.user_id
                )));
            }
            Err(status) => anyhow::bail!("cannot look up the user's email: {}", status.message()),
        };
        let to: Mailbox = match user.email.parse() {
            Ok(to) => to,
            Err(_) => {
                return Ok(Verdict::Invalid(
                    "the user's email address is not usable".into(),
                ));
            }
        };
        let csv = jobs::csv(&self.pool, job_id).await?;
        let email = statement_email(&self.smtp.from, to, &job, csv)?;
        match self.transport.send(email).await {
            Ok(_) => {}
            Err(error) if error.is_permanent() => {
                return Ok(Verdict::Invalid(format!(
                    "the SMTP server refused the email: {error}"
                )));
            }
            Err(error) => return Err(error.into()),
        }
        let mut conn = self.pool.acquire().await?;
        platform::inbox::record(&mut conn, &message_id, EMAILS.name).await?;
        tracing::info!(%job_id, "statement emailed");
        Ok(Verdict::Done)
    }
}

fn statement_email(
    from: &Mailbox,
    to: Mailbox,
    job: &Job,
    csv: Vec<u8>,
) -> anyhow::Result<Message> {
    let name = format!("statement-{}-{}.csv", job.period_from, job.period_to);
    let text = format!(
        "Your statement from {} to {} ({} transactions) is attached.\n",
        job.period_from,
        job.period_to,
        job.line_count.unwrap_or(0)
    );
    Ok(Message::builder()
        .from(from.clone())
        .to(to)
        .subject(format!(
            "Your statement {} to {}",
            job.period_from, job.period_to
        ))
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(text))
                .singlepart(Attachment::new(name).body(csv, ContentType::parse("text/csv")?)),
        )?)
}

/// The id an email for `job_id` is recorded under.
pub fn recorded_id(job_id: Uuid) -> String {
    format!("email:{job_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_read_by_lettre_and_bad_ones_refused_without_quoting_them() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.com",
            "smtp://user:secret@mail.example.com?tls=required",
            "smtps://user:secret@mail.example.com",
        ] {
            assert!(SmtpSettings::parse(url, "a@b.c").is_ok(), "{url}");
        }
        for url in [
            "http://mail",
            "smtp://mail:x",
            "smtp://user:secret@mail?tls=maybe",
        ] {
            let error = SmtpSettings::parse(url, "a@b.c").unwrap_err().to_string();
            assert!(error.contains("SMTP_URL"), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
        assert!(SmtpSettings::parse("smtp://mail", "not an address").is_err());
    }
}
