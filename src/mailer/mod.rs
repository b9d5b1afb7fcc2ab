//! Outgoing mail: the codes of e-mail confirmation, e-mail updates, password resets and account
//! deletion.
//!
//! A [`Mailer`] hands each [`Mail`] to a [`Transport`]:
//!
//! - [`smtp::SmtpTransport`] when `email.smtp_url` and `email.from_address` are set
//!   (`PDS_EMAIL_SMTP_URL`, `PDS_EMAIL_FROM_ADDRESS`): SMTP over rustls, as the reference's
//!   nodemailer reads the same URL (`smtps://` implicit TLS on 465, `smtp://` STARTTLS when
//!   offered on 587; see [`smtp::SmtpSettings`]).
//! - [`LogTransport`] in dev mode without SMTP: each message (recipient, subject, body with the
//!   code) goes to the log at INFO, so a developer reads the code there.
//! - none otherwise: the methods that must send mail answer 400 `InvalidRequest` saying the
//!   server cannot send e-mail ([`MailError::NotConfigured`]), instead of pretending to.
//!
//! What each message says is in [`messages`].

pub mod messages;
pub mod smtp;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::StatusCode;
use pds_storage::{Database, StorageError};

use crate::api::ApiError;
use crate::config::Config;

/// One message to one recipient, plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// No SMTP server is configured (and dev mode is off, or the URL could not be used).
    #[error("this server is not set up to send e-mail")]
    NotConfigured,
    /// The message could not be built (an address lettre does not accept).
    #[error("cannot build the message: {0}")]
    Message(String),
    /// The mail server could not be reached or refused the message.
    #[error("the mail server: {0}")]
    Transport(String),
}

impl From<MailError> for ApiError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::NotConfigured => ApiError::invalid_request(
                "This server is not set up to send e-mail (its operator has not configured \
                 PDS_EMAIL_SMTP_URL and PDS_EMAIL_FROM_ADDRESS), so it cannot send the code",
            ),
            MailError::Message(_) | MailError::Transport(_) => {
                tracing::warn!(error = %e, "e-mail not sent");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "UpstreamFailure",
                    "The e-mail could not be sent; try again later",
                )
            }
        }
    }
}

/// The future a [`Transport`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

/// Something that delivers mail.
pub trait Transport: Send + Sync + 'static {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a>;
}

/// Dev mode without SMTP: writes each message to the log at INFO instead of sending it.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogTransport;

impl Transport for LogTransport {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            // One line (the body Debug-escaped), so that log readers and tests find it whole.
            tracing::info!(
                to = %mail.to,
                subject = %mail.subject,
                body = ?mail.text,
                "e-mail not sent (dev mode, no SMTP server configured)"
            );
            Ok(())
        })
    }
}

/// Sends the server's mail; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Option<Arc<dyn Transport>>,
    /// Named in messages: the server's host name.
    hostname: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("configured", &self.transport.is_some())
            .field("hostname", &self.hostname)
            .finish()
    }
}

impl Mailer {
    /// The mailer for this configuration, after bringing the tables of the flows that send mail
    /// up to date (email tokens' companion table, `reserved_signing_key`; see
    /// [`crate::accounts::email_tokens::migrate`]).
    pub async fn open(config: &Config, db: &Database) -> Result<Mailer, StorageError> {
        db.write(|w| {
            crate::accounts::email_tokens::migrate(w.tx.connection())?;
            Ok::<_, StorageError>(())
        })
        .await?;
        Ok(Mailer::from_config(config))
    }

    /// SMTP if configured; else the log in dev mode; else none. A URL that cannot be used is
    /// logged as an error at start-up and leaves the server without mail.
    pub fn from_config(config: &Config) -> Mailer {
        let hostname = config.server.hostname.clone();
        let transport: Option<Arc<dyn Transport>> = match &config.email {
            Some(email) => match smtp::SmtpTransport::new(
                &email.smtp_url,
                &email.from_address,
                &config.server.hostname,
            ) {
                Ok(smtp) => Some(Arc::new(smtp)),
                Err(e) => {
                    // The URL carries credentials: say what is wrong, never the URL.
                    tracing::error!(
                        error = %e,
                        "PDS_EMAIL_SMTP_URL cannot be used; no e-mail will be sent"
                    );
                    None
                }
            },
            None if config.server.dev_mode => {
                tracing::info!(
                    "no SMTP server configured: e-mail (confirmation and reset codes) is written \
                     to this log instead (dev mode)"
                );
                Some(Arc::new(LogTransport))
            }
            None => None,
        };
        Mailer {
            transport,
            hostname,
        }
    }

    /// A mailer over any transport (tests, other deployments).
    pub fn with_transport(transport: Arc<dyn Transport>, hostname: &str) -> Mailer {
        Mailer {
            transport: Some(transport),
            hostname: hostname.to_owned(),
        }
    }

    /// A mailer that cannot send.
    pub fn disabled(hostname: &str) -> Mailer {
        Mailer {
            transport: None,
            hostname: hostname.to_owned(),
        }
    }

    /// Whether mail can be sent at all: checked before a token is made, so that a request is
    /// refused the same way whoever it names.
    pub fn ensure_available(&self) -> Result<(), MailError> {
        match self.transport {
            Some(_) => Ok(()),
            None => Err(MailError::NotConfigured),
        }
    }

    /// The host name messages name.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let transport = self.transport.as_ref().ok_or(MailError::NotConfigured)?;
        transport.send(mail).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps what it is given.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Mail>>);

    impl Transport for Recorder {
        fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
            Box::pin(async move {
                self.0.lock().unwrap().push(mail.clone());
                Ok(())
            })
        }
    }

    fn config(toml: &str) -> Config {
        let env = |_: &str| None;
        Config::from_toml_str(toml, &env).unwrap()
    }

    #[tokio::test]
    async fn sends_through_its_transport() {
        let recorder = Arc::new(Recorder::default());
        let mailer = Mailer::with_transport(recorder.clone(), "pds.example.com");
        let mail = messages::confirm_email("alice@example.com", "ABCDE-FGHIJ", mailer.hostname());
        mailer.ensure_available().unwrap();
        mailer.send(&mail).await.unwrap();
        assert_eq!(recorder.0.lock().unwrap().as_slice(), [mail]);
    }

    #[tokio::test]
    async fn without_a_transport_nothing_is_sent() {
        let mailer = Mailer::disabled("pds.example.com");
        assert!(matches!(
            mailer.ensure_available(),
            Err(MailError::NotConfigured)
        ));
        let mail = messages::confirm_email("a@example.com", "ABCDE-FGHIJ", "x");
        let err: ApiError = mailer.send(&mail).await.unwrap_err().into();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.name(), "InvalidRequest");
        assert!(err.message().contains("PDS_EMAIL_SMTP_URL"), "{err}");
    }

    #[test]
    fn transport_follows_the_configuration() {
        // Dev mode without SMTP: the log.
        let dev = Mailer::from_config(&config("[server]\ndev_mode = true\n"));
        assert!(dev.ensure_available().is_ok());
        // Production without SMTP: none.
        let prod = Mailer::from_config(&config("[server]\nhostname = \"pds.example.com\"\n"));
        assert!(prod.ensure_available().is_err());
        assert_eq!(prod.hostname(), "pds.example.com");
        // SMTP configured: used, in either mode (building it connects to nothing).
        let smtp = Mailer::from_config(&config(
            "[email]\nsmtp_url = \"smtps://user:pass@smtp.example.com\"\nfrom_address = \"pds@example.com\"\n",
        ));
        assert!(smtp.ensure_available().is_ok());
        // An SMTP URL lettre cannot use leaves the server without mail, not on the log.
        let bad = Mailer::from_config(&config(
            "[server]\ndev_mode = true\n[email]\nsmtp_url = \"smtp://smtp.example.com?tls=sometimes\"\nfrom_address = \"pds@example.com\"\n",
        ));
        assert!(bad.ensure_available().is_err());
    }

    #[test]
    fn send_failures_are_upstream_failures_without_detail() {
        let err: ApiError = MailError::Transport("535 5.7.8 bad credentials for bob".into()).into();
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(err.name(), "UpstreamFailure");
        assert!(!err.message().contains("bob"));
    }
}
