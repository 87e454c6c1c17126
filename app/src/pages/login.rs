//! The login page: a plain form posting to /login (works before hydration).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::format::utc_time;

#[component]
pub fn LoginPage() -> impl IntoView {
    let q = use_query_map();
    let get = move |k: &str| q.with_untracked(|m| m.get(k).map(|s| s.to_string()));
    let next = get("next").unwrap_or_else(|| "/".to_string());
    // Only known messages, and only numbers from the query: nothing a link
    // sends is shown as text.
    let message = match get("error").as_deref() {
        Some("invalid") => Some(("error", "Wrong user name or password.".to_string())),
        Some("locked") => {
            let until = get("until")
                .and_then(|u| u.parse::<i64>().ok())
                .filter(|ms| (0..=253_402_300_799_000).contains(ms))
                .map(|ms| format!(" until {}", utc_time(ms)))
                .unwrap_or_default();
            Some((
                "error",
                format!("Too many failed logins: this account is locked{until}. Try again then, or ask an admin."),
            ))
        }
        Some("nousers") => Some((
            "error",
            "No users exist yet: an operator must create one on the server with \
             `pg-console user add NAME --role admin`."
                .to_string(),
        )),
        Some("internal") => Some((
            "error",
            "Login failed because of a server error; see the console's log.".to_string(),
        )),
        Some(_) => None,
        None if get("loggedout").is_some() => Some(("info", "You are logged out.".to_string())),
        None => None,
    };
    view! {
        <section class="page login">
            <form class="panel login-form" method="post" action="/login">
                <h1>"Log in to pg-console"</h1>
                {message.map(|(kind, m)| view! { <p class=format!("banner {kind}") data-testid="login-message">{m}</p> })}
                <label>"User name" <input name="username" autocomplete="username" required autofocus/></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required/></label>
                <input type="hidden" name="next" value=next/>
                <button type="submit" class="primary">"Log in"</button>
            </form>
        </section>
    }
}
