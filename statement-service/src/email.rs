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
use proto::auth::v1::GetUserRequest;
use proto::auth::v1::auth_service_client::AuthServiceClient;
use sqlx::PgPool;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::jobs::{self, Job};

pub const QUEUE: &str = "statement.emails";

/// Where and as whom to send.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: Mailbox,
}

impl SmtpSettings {
    /// `SMTP_URL` as `smtp://host[:port]` (plain SMTP to a relay; port 25 by default) and
    /// `SMTP_FROM` as an address.
    pub fn parse(url: &str, from: &str) -> Result<Self, ConfigError> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| ConfigError::new("SMTP_URL", "must start with smtp://"))?
            .trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .map_err(|_| ConfigError::new("SMTP_URL", "the port must be a number"))?,
            ),
            None => (rest, 25),
        };
        if host.is_empty() {
            return Err(ConfigError::new("SMTP_URL", "names no host"));
        }
        let from = from.parse().map_err(|error| {
            ConfigError::new("SMTP_FROM", format!("is not an email address: {error}"))
        })?;
        Ok(Self {
            host: host.to_owned(),
            port,
            from,
        })
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
    pub fn new(pool: PgPool, smtp: SmtpSettings, auth: AuthClient) -> Self {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Self {
            pool,
            smtp,
            transport,
            auth,
        }
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
        let Some(job) = job.filter(|job| job.status == "done") else {
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
        platform::inbox::record(&mut conn, &message_id, QUEUE).await?;
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
    fn smtp_urls_name_a_host_and_an_optional_port() {
        let settings =
            SmtpSettings::parse("smtp://127.0.0.1:2525", "statements@example.com").unwrap();
        assert_eq!((settings.host.as_str(), settings.port), ("127.0.0.1", 2525));
        assert_eq!(
            SmtpSettings::parse("smtp://mail.example.com", "a@b.c")
                .unwrap()
                .port,
            25
        );
        assert!(SmtpSettings::parse("http://mail", "a@b.c").is_err());
        assert!(SmtpSettings::parse("smtp://mail:x", "a@b.c").is_err());
        assert!(SmtpSettings::parse("smtp://mail", "not an address").is_err());
    }
}
