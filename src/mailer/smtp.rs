//! SMTP delivery with lettre, configured from `PDS_EMAIL_SMTP_URL`.
//!
//! The URL is read the way the reference PDS's nodemailer reads it, so an existing `pds.env`
//! works unchanged:
//!
//! | URL | connection | default port |
//! |---|---|---|
//! | `smtps://user:pass@host[:port]` | TLS from the first byte | 465 |
//! | `smtp://user:pass@host[:port]` | STARTTLS if the server offers it | 587 |
//! | `smtp://…?requireTLS=true` or `?tls=required` | STARTTLS or fail | 587 |
//! | `smtp://…?ignoreTLS=true` or `?tls=none` | plain text (a relay on this machine) | 587 |
//! | `smtp://…?secure=true` | TLS from the first byte | 465 |
//!
//! Other nodemailer options (`pool=true`, …) are ignored; an unknown `tls=` value is an error.
//!
//! User and password are percent-decoded (`%40` for `@` in a user name, as URLs need). A path
//! (`smtps://host/ehlo.example.com`) names the host announced in EHLO, as lettre's URLs do;
//! otherwise it is the PDS's own hostname. Certificates are checked against the system's trust
//! store (rustls-platform-verifier), TLS 1.2 at least. Nothing connects until a message is sent.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::percent_decode_str;

use super::{Mail, MailError, SendFuture, Transport};

/// How long one SMTP command may take before the send fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the start (`smtps://`).
    Implicit,
    /// STARTTLS, refusing to go on without it.
    StartTlsRequired,
    /// STARTTLS when the server offers it (nodemailer's default for `smtp://`).
    StartTlsOpportunistic,
    /// None: only for a relay on a trusted network.
    Plain,
}

/// What `PDS_EMAIL_SMTP_URL` says. The password is not shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User name and password, decoded.
    pub credentials: Option<(String, String)>,
    /// The name announced in EHLO, when the URL gives one.
    pub ehlo_name: Option<String>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("ehlo_name", &self.ehlo_name)
            .finish()
    }
}

/// What is wrong with an SMTP URL. Never contains the URL (it holds the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SmtpUrlError(String);

fn bad(why: impl Into<String>) -> SmtpUrlError {
    SmtpUrlError(why.into())
}

impl SmtpSettings {
    pub fn parse(text: &str) -> Result<SmtpSettings, SmtpUrlError> {
        let url = url::Url::parse(text.trim()).map_err(|e| bad(format!("not a URL ({e})")))?;
        let implicit = match url.scheme() {
            "smtps" => true,
            "smtp" => false,
            other => return Err(bad(format!("scheme {other:?}: use smtp:// or smtps://"))),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).to_string(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).to_string(),
            _ => return Err(bad("no host")),
        };
        let mut security = if implicit {
            Security::Implicit
        } else {
            Security::StartTlsOpportunistic
        };
        for (key, value) in url.query_pairs() {
            let value = value.to_ascii_lowercase();
            let on = matches!(value.as_str(), "true" | "1" | "yes" | "");
            let chosen = match (key.as_ref(), value.as_str()) {
                // lettre's spelling
                ("tls", "required") => Security::StartTlsRequired,
                ("tls", "opportunistic") => Security::StartTlsOpportunistic,
                ("tls", "none") => Security::Plain,
                ("tls", other) => {
                    return Err(bad(format!(
                        "tls={other:?}: use tls=required, tls=opportunistic or tls=none"
                    )));
                }
                // nodemailer's
                ("requireTLS", _) if on => Security::StartTlsRequired,
                ("ignoreTLS", _) if on => Security::Plain,
                ("secure", _) if on => Security::Implicit,
                // Off switches, and nodemailer's other options (pool, …), which do not apply.
                _ => continue,
            };
            // smtps:// is TLS from the first byte whatever else the URL says, as in nodemailer.
            if !implicit {
                security = chosen;
            }
        }
        let default_port = if security == Security::Implicit {
            465
        } else {
            587
        };
        let decode = |part: &str, what: &str| {
            percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| bad(format!("the {what} is not UTF-8 once percent-decoded")))
        };
        let user = decode(url.username(), "user name")?;
        let password = url.password().map(|p| decode(p, "password")).transpose()?;
        let credentials = match (user.is_empty(), password) {
            (true, None) => None,
            (false, Some(password)) => Some((user, password)),
            (false, None) => Some((user, String::new())),
            (true, Some(_)) => return Err(bad("a password without a user name")),
        };
        let ehlo_name = Some(url.path().trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        Ok(SmtpSettings {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
            ehlo_name,
        })
    }
}

/// Sends over SMTP.
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpTransport {
    /// Builds the transport (no connection is made). `hostname` is the PDS's, announced in EHLO
    /// unless the URL names another.
    pub fn new(url: &str, from: &str, hostname: &str) -> Result<SmtpTransport, SmtpUrlError> {
        let settings = SmtpSettings::parse(url)?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| bad(format!("PDS_EMAIL_FROM_ADDRESS is not a mailbox: {e}")))?;
        let tls = || {
            TlsParameters::new(settings.host.clone())
                .map_err(|e| bad(format!("TLS set-up failed: {e}")))
        };
        let tls = match settings.security {
            Security::Implicit => Tls::Wrapper(tls()?),
            Security::StartTlsRequired => Tls::Required(tls()?),
            Security::StartTlsOpportunistic => Tls::Opportunistic(tls()?),
            Security::Plain => Tls::None,
        };
        let ehlo = settings
            .ehlo_name
            .clone()
            .unwrap_or_else(|| hostname.to_owned());
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .hello_name(ClientId::Domain(ehlo))
            .timeout(Some(COMMAND_TIMEOUT));
        if let Some((user, password)) = settings.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(SmtpTransport {
            inner: builder.build(),
            from,
        })
    }
}

/// The message as it goes on the wire: plain UTF-8 text from the configured sender.
pub fn build_message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| MailError::Message(format!("recipient: {e}")))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
        .map_err(|e| MailError::Message(e.to_string()))
}

impl Transport for SmtpTransport {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            let message = build_message(&self.from, mail)?;
            self.inner
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transport(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> SmtpSettings {
        SmtpSettings::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn schemes_ports_and_security_as_nodemailer() {
        let s = parse("smtps://resend:re_123@smtp.resend.com:465/");
        assert_eq!(s.host, "smtp.resend.com");
        assert_eq!(s.port, 465);
        assert_eq!(s.security, Security::Implicit);
        assert_eq!(s.credentials, Some(("resend".into(), "re_123".into())));
        assert_eq!(s.ehlo_name, None);

        let s = parse("smtps://user:pw@smtp.example.com");
        assert_eq!((s.port, s.security), (465, Security::Implicit));

        let s = parse("smtp://user:pw@smtp.example.com");
        assert_eq!((s.port, s.security), (587, Security::StartTlsOpportunistic));

        let s = parse("smtp://localhost:25");
        assert_eq!((s.host.as_str(), s.port), ("localhost", 25));
        assert_eq!(s.credentials, None);

        for url in [
            "smtp://smtp.example.com?tls=required",
            "smtp://smtp.example.com?requireTLS=true",
        ] {
            assert_eq!(parse(url).security, Security::StartTlsRequired, "{url}");
        }
        for url in [
            "smtp://127.0.0.1:2525?tls=none",
            "smtp://127.0.0.1:2525?ignoreTLS=true",
        ] {
            assert_eq!(parse(url).security, Security::Plain, "{url}");
        }
        assert_eq!(
            parse("smtp://smtp.example.com?secure=true").security,
            Security::Implicit
        );
        assert_eq!(parse("smtp://smtp.example.com?secure=true").port, 465);
        assert_eq!(
            parse("smtp://smtp.example.com?requireTLS=false").security,
            Security::StartTlsOpportunistic
        );
        // nodemailer options that do not apply are ignored; smtps:// stays TLS from the start.
        assert_eq!(
            parse("smtp://smtp.example.com?pool=true").security,
            Security::StartTlsOpportunistic
        );
        assert_eq!(
            parse("smtps://smtp.example.com?ignoreTLS=true").security,
            Security::Implicit
        );
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let s = parse("smtps://me%40example.com:p%40ss%3Aw%2Frd@smtp.example.com");
        assert_eq!(
            s.credentials,
            Some(("me@example.com".into(), "p@ss:w/rd".into()))
        );
        // A user without a password (some relays) is a user with an empty one.
        let s = parse("smtp://apikey@smtp.example.com");
        assert_eq!(s.credentials, Some(("apikey".into(), String::new())));
    }

    #[test]
    fn hosts_and_ehlo_names() {
        assert_eq!(parse("smtp://[::1]:2525").host, "::1");
        assert_eq!(parse("smtp://192.0.2.1").host, "192.0.2.1");
        assert_eq!(
            parse("smtps://u:p@smtp.example.com/mail.example.org").ehlo_name,
            Some("mail.example.org".into())
        );
        assert_eq!(parse("SMTPS://SMTP.Example.COM").host, "smtp.example.com");
    }

    #[test]
    fn refusals_never_echo_the_url() {
        for url in [
            "https://smtp.example.com",
            "smtp://",
            "smtp://:secret@smtp.example.com",
            "smtp://smtp.example.com?tls=sometimes",
            "smtps://u:%FF%FE@smtp.example.com",
            "not a url",
        ] {
            let e = SmtpSettings::parse(url).expect_err(url);
            assert!(!e.to_string().contains("secret"), "{e}");
            assert!(!e.to_string().contains("smtp.example.com"), "{url}: {e}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let s = parse("smtps://user:hunter2@smtp.example.com");
        let shown = format!("{s:?}");
        assert!(
            shown.contains("user") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn transports_build_without_connecting() {
        assert!(
            SmtpTransport::new("smtps://u:p@smtp.example.com", "pds@example.com", "pds").is_ok()
        );
        assert!(
            SmtpTransport::new(
                "smtp://127.0.0.1:2525?tls=none",
                "PDS <pds@example.com>",
                "pds"
            )
            .is_ok()
        );
        assert!(SmtpTransport::new("smtps://smtp.example.com", "not an address", "pds").is_err());
    }

    #[test]
    fn messages_on_the_wire() {
        let from: Mailbox = "pds@example.com".parse().unwrap();
        let mail = super::super::messages::reset_password(
            "alice@example.com",
            "alice.example.com",
            "ABCDE-FGHIJ",
            "pds.example.com",
        );
        let wire = String::from_utf8(build_message(&from, &mail).unwrap().formatted()).unwrap();
        assert!(wire.contains("From: pds@example.com\r\n"), "{wire}");
        assert!(wire.contains("To: alice@example.com\r\n"), "{wire}");
        assert!(
            wire.contains(&format!("Subject: {}\r\n", mail.subject)),
            "{wire}"
        );
        assert!(
            wire.contains("Content-Type: text/plain; charset=utf-8"),
            "{wire}"
        );
        assert!(wire.contains("ABCDE-FGHIJ"), "{wire}");
        // A recipient lettre cannot address is an error, not a panic.
        let bad = Mail {
            to: "not an address".into(),
            ..mail
        };
        assert!(matches!(
            build_message(&from, &bad),
            Err(MailError::Message(_))
        ));
    }
}
