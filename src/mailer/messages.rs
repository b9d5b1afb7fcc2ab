//! What the server's e-mails say. Plain text: the code on a line of its own so that it is easy to
//! copy, what it is for, how long it lasts, and what to do if the reader did not ask for it. The
//! subjects are the reference PDS's.

use super::Mail;

/// How long the codes last, as the messages say (see `accounts::email_tokens::TOKEN_TTL`).
const VALID_FOR: &str = "15 minutes";

fn mail(to: &str, subject: &str, text: String) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
    }
}

fn body(intro: &str, token: &str, hostname: &str, not_you: &str) -> String {
    format!(
        "{intro}\n\n    {token}\n\nThe code works once, within {VALID_FOR}.\n\n{not_you}\n\n-- {hostname}\n"
    )
}

/// `com.atproto.server.requestEmailConfirmation`.
pub fn confirm_email(to: &str, token: &str, hostname: &str) -> Mail {
    mail(
        to,
        "Email Confirmation",
        body(
            &format!("Enter this code to confirm your e-mail address on {hostname}:"),
            token,
            hostname,
            "If you did not ask for this, you can ignore this message.",
        ),
    )
}

/// `com.atproto.server.requestEmailUpdate`, sent to the current (confirmed) address.
pub fn update_email(to: &str, token: &str, hostname: &str) -> Mail {
    mail(
        to,
        "Email Update Requested",
        body(
            &format!("Enter this code to change the e-mail address of your account on {hostname}:"),
            token,
            hostname,
            "If you did not ask for this, do not share the code; your address stays as it is.",
        ),
    )
}

/// `com.atproto.server.requestPasswordReset`.
pub fn reset_password(to: &str, handle: &str, token: &str, hostname: &str) -> Mail {
    mail(
        to,
        "Password Reset Requested",
        body(
            &format!("Enter this code to set a new password for @{handle} on {hostname}:"),
            token,
            hostname,
            "If you did not ask for this, you can ignore this message: your password stays as it is.",
        ),
    )
}

/// `com.atproto.server.requestAccountDelete`.
pub fn account_delete(to: &str, token: &str, hostname: &str) -> Mail {
    mail(
        to,
        "Account Deletion Request",
        body(
            &format!(
                "Enter this code, with your password, to delete your account on {hostname}. \
                 Deletion removes your posts and everything else the account holds, and cannot be undone:"
            ),
            token,
            hostname,
            "If you did not ask for this, do not share the code, and consider changing your password.",
        ),
    )
}

/// `com.atproto.identity.requestPlcOperationSignature` (for the identity methods).
pub fn plc_operation(to: &str, token: &str, hostname: &str) -> Mail {
    mail(
        to,
        "PLC Update Operation Requested",
        body(
            &format!(
                "Enter this code to approve a change to your account's identity (DID document) on {hostname}:"
            ),
            token,
            hostname,
            "If you did not ask for this, do not share the code: it lets someone move your account.",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_carries_its_code_and_recipient() {
        let token = "ABCDE-FGHIJ";
        let host = "pds.example.com";
        let all = [
            (
                confirm_email("a@example.com", token, host),
                "Email Confirmation",
            ),
            (
                update_email("a@example.com", token, host),
                "Email Update Requested",
            ),
            (
                reset_password("a@example.com", "alice.example.com", token, host),
                "Password Reset Requested",
            ),
            (
                account_delete("a@example.com", token, host),
                "Account Deletion Request",
            ),
            (
                plc_operation("a@example.com", token, host),
                "PLC Update Operation Requested",
            ),
        ];
        for (mail, subject) in all {
            assert_eq!(mail.to, "a@example.com");
            assert_eq!(mail.subject, subject);
            // The code stands on a line of its own.
            assert!(
                mail.text.lines().any(|l| l.trim() == token),
                "{}",
                mail.text
            );
            assert!(mail.text.contains(host), "{}", mail.text);
            assert!(mail.text.contains("15 minutes"), "{}", mail.text);
            assert!(!mail.subject.contains('\n'));
        }
        let reset = reset_password("a@example.com", "alice.example.com", token, host);
        assert!(reset.text.contains("@alice.example.com"), "{}", reset.text);
    }
}
