//! The browser pages: sign-in, account choice, consent, the account page, and errors.
//!
//! Server-rendered HTML with no JavaScript and no external resources: plain forms that work
//! with any browser, a keyboard or a screen reader (labels, one heading per page, errors
//! announced with `role="alert"`). Everything that comes from outside (client names, handles,
//! scopes) is escaped here, once, by [`esc`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML content and double-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.45; }
body { margin: 0; display: flex; justify-content: center; padding: 2rem 1rem; }
main { width: 100%; max-width: 28rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
p.lead { margin-top: 0; opacity: .8; }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
input[type=text], input[type=password] { width: 100%; box-sizing: border-box; font: inherit;
  padding: .6rem .7rem; border: 1px solid #8888; border-radius: .4rem; }
button { font: inherit; padding: .6rem 1.1rem; border-radius: .4rem; border: 1px solid #8888;
  cursor: pointer; background: transparent; color: inherit; }
button.primary { background: #1463d6; border-color: #1463d6; color: #fff; font-weight: 600; }
.actions { display: flex; gap: .75rem; margin-top: 1.5rem; flex-wrap: wrap; }
.error { border: 1px solid #c0392b; color: #c0392b; border-radius: .4rem; padding: .6rem .8rem; }
ul.grants { padding-left: 1.2rem; } ul.grants li { margin: .5rem 0; }
.detail { display: block; opacity: .8; font-size: .95em; }
.card { border: 1px solid #8884; border-radius: .5rem; padding: .75rem 1rem; margin: .75rem 0; }
.muted { opacity: .75; font-size: .9em; word-break: break-all; }
";

/// A whole page.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        esc(title)
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No scripts, no frames around these pages (clickjacking), nothing loaded from elsewhere
    // but an app's logo.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// Hidden form fields.
pub fn hidden(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(name),
                esc(value)
            )
        })
        .collect()
}

fn error_box(error: Option<&str>) -> String {
    match error {
        Some(e) => format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)),
        None => String::new(),
    }
}

/// An account signed in on this browser, as the pages show it.
pub struct KnownAccount {
    pub did: String,
    pub handle: String,
}

/// The sign-in page: a visible identifier field (prefilled from `login_hint`), a password
/// field, and a submit button; Enter submits. Accounts already signed in on this browser are
/// offered first, one button each.
pub struct SignIn<'a> {
    pub heading: &'a str,
    pub lead: &'a str,
    pub action: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    pub identifier: Option<&'a str>,
    pub error: Option<&'a str>,
    pub known_accounts: &'a [KnownAccount],
    /// The page URL (with its query) a known account's link adds `&account=<did>` to.
    pub choose_action: Option<&'a str>,
}

pub fn sign_in(status: StatusCode, s: &SignIn<'_>) -> Response {
    let mut body = format!(
        "<h1>{}</h1><p class=\"lead\">{}</p>{}",
        esc(s.heading),
        esc(s.lead),
        error_box(s.error)
    );
    if let (Some(choose), false) = (s.choose_action, s.known_accounts.is_empty()) {
        body.push_str("<h2>Continue as</h2><ul class=\"grants\">");
        for account in s.known_accounts {
            let href = format!(
                "{choose}&account={}",
                percent_encoding::utf8_percent_encode(
                    &account.did,
                    percent_encoding::NON_ALPHANUMERIC
                )
            );
            body.push_str(&format!(
                "<li><a href=\"{}\">@{}</a> <span class=\"muted\">{}</span></li>",
                esc(&href),
                esc(&account.handle),
                esc(&account.did)
            ));
        }
        body.push_str("</ul><h2>Or sign in with another account</h2>");
    }
    let autofocus_id = if s.identifier.is_some_and(|i| !i.is_empty()) {
        ""
    } else {
        " autofocus"
    };
    let autofocus_pw = if autofocus_id.is_empty() {
        " autofocus"
    } else {
        ""
    };
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">{}\
         <label for=\"identifier\">Handle or email</label>\
         <input type=\"text\" id=\"identifier\" name=\"identifier\" value=\"{}\" \
         autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required{autofocus_id}>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required{autofocus_pw}>\
         <div class=\"actions\"><button type=\"submit\" class=\"primary\">Sign in</button></div></form>",
        esc(s.action),
        hidden(s.hidden),
        esc(s.identifier.unwrap_or_default()),
    ));
    page(status, s.heading, &body)
}

/// The consent page: who asks, for which account, for what; Authorize or Deny.
pub struct Consent<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub client_uri: Option<&'a str>,
    pub account: &'a KnownAccount,
    pub permissions: &'a [(String, String)],
    pub action: &'a str,
    pub hidden: &'a [(&'a str, &'a str)],
    pub switch_account: &'a str,
}

pub fn consent(c: &Consent<'_>) -> Response {
    let permissions: String = c
        .permissions
        .iter()
        .map(|(title, detail)| {
            format!(
                "<li><strong>{}</strong><span class=\"detail\">{}</span></li>",
                esc(title),
                esc(detail)
            )
        })
        .collect();
    let site = match c.client_uri {
        Some(uri) => format!("<p class=\"muted\">{}</p>", esc(uri)),
        None => String::new(),
    };
    let body = format!(
        "<h1>Authorize {name}?</h1>\
         <p class=\"lead\"><strong>{name}</strong> wants to use your account \
         <strong>@{handle}</strong>.</p>{site}\
         <p class=\"muted\">App id: {client_id}</p>\
         <h2>It asks to</h2><ul class=\"grants\">{permissions}</ul>\
         <form method=\"post\" action=\"{action}\">{hidden}\
         <div class=\"actions\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\" class=\"primary\" autofocus>Authorize</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
         </div></form>\
         <p><a href=\"{switch}\">Not @{handle}? Use another account</a></p>",
        name = esc(c.client_name),
        handle = esc(&c.account.handle),
        client_id = esc(c.client_id),
        action = esc(c.action),
        hidden = hidden(c.hidden),
        switch = esc(c.switch_account),
    );
    page(
        StatusCode::OK,
        &format!("Authorize {}", c.client_name),
        &body,
    )
}

/// A page that can only explain (a request that cannot be sent back to its app).
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p role=\"alert\">{}</p>",
            esc(title),
            esc(message)
        ),
    )
}

/// `response_mode=form_post`: the response as a form the browser posts to the app. Without
/// scripts (none run on these pages), the person presses the button.
pub fn form_post(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let body = format!(
        "<h1>Return to the app</h1><form method=\"post\" action=\"{}\">{}\
         <div class=\"actions\"><button type=\"submit\" class=\"primary\" autofocus>Continue</button></div></form>",
        esc(redirect_uri),
        hidden(params)
    );
    page(StatusCode::OK, "Return to the app", &body)
}

/// One authorized app on the account page.
pub struct AuthorizedApp {
    pub grant_id: String,
    pub name: String,
    pub client_id: String,
    pub permissions: Vec<(String, String)>,
    pub since: String,
    pub last_used: String,
}

/// One signed-in account on the account page, with its apps.
pub struct AccountApps {
    pub account: KnownAccount,
    pub apps: Vec<AuthorizedApp>,
}

pub fn account(
    accounts: &[AccountApps],
    csrf: &str,
    revoke_action: &str,
    sign_out_action: &str,
    notice: Option<&str>,
) -> Response {
    let mut body = String::from("<h1>Your account</h1>");
    if let Some(notice) = notice {
        body.push_str(&format!(
            "<p role=\"status\" class=\"card\">{}</p>",
            esc(notice)
        ));
    }
    for entry in accounts {
        body.push_str(&format!(
            "<section aria-labelledby=\"acct-{id}\"><h2 id=\"acct-{id}\">@{handle}</h2>\
             <p class=\"muted\">{did}</p><h3>Authorized apps</h3>",
            id = esc(&entry.account.did.replace(':', "-")),
            handle = esc(&entry.account.handle),
            did = esc(&entry.account.did),
        ));
        if entry.apps.is_empty() {
            body.push_str("<p>No apps are signed in to this account.</p>");
        }
        for app in &entry.apps {
            let permissions: String = app
                .permissions
                .iter()
                .map(|(t, _)| format!("<li>{}</li>", esc(t)))
                .collect();
            body.push_str(&format!(
                "<div class=\"card\"><strong>{name}</strong><p class=\"muted\">{client_id}</p>\
                 <ul class=\"grants\">{permissions}</ul>\
                 <p class=\"muted\">Authorized {since}; last used {last_used}</p>\
                 <form method=\"post\" action=\"{action}\">{hidden}\
                 <button type=\"submit\" aria-label=\"Revoke access for {name}\">Revoke</button></form></div>",
                name = esc(&app.name),
                client_id = esc(&app.client_id),
                since = esc(&app.since),
                last_used = esc(&app.last_used),
                action = esc(revoke_action),
                hidden = hidden(&[("csrf", csrf), ("account", &entry.account.did), ("grant", &app.grant_id)]),
            ));
        }
        body.push_str(&format!(
            "<form method=\"post\" action=\"{}\">{}<button type=\"submit\">Sign @{} out of this browser</button></form></section>",
            esc(sign_out_action),
            hidden(&[("csrf", csrf), ("account", &entry.account.did)]),
            esc(&entry.account.handle)
        ));
    }
    page(StatusCode::OK, "Your account", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_content_and_attributes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            hidden(&[("a\"", "<b>")]),
            "<input type=\"hidden\" name=\"a&quot;\" value=\"&lt;b&gt;\">"
        );
    }
}
