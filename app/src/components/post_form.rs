//! A form that posts to a server function. Before the page hydrates, the
//! browser submits it (the server function reads the urlencoded body, then
//! sends the browser back to the page). Once hydrated, the form's own `args`
//! reads its named fields into the server function's arguments and the
//! action dispatches them, so the page updates in place.
//!
//! Leptos' `ActionForm` does the same, but decodes the form data into the
//! arguments with serde_qs: that decoder, and a copy of it per server
//! function, made 25-27 KB of the gzipped WASM of the Backups and Admin pages
//! (docs/benchmarks.md, WASM). Here each form names its fields.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// The named fields of a submitted form.
pub struct Fields(#[cfg(feature = "hydrate")] web_sys::FormData);

impl Fields {
    /// The value of the field `name`, or "" when the form has none.
    pub fn text(&self, name: &str) -> String {
        #[cfg(feature = "hydrate")]
        return self.0.get(name).as_string().unwrap_or_default();
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = name;
            String::new()
        }
    }
}

/// `<form method="post" action=<the server function's URL>>`, submitted
/// through `action` once the page is hydrated.
#[component]
pub fn PostForm<S>(
    action: ServerAction<S>,
    /// The server function's arguments, read from the form's fields.
    args: fn(&Fields) -> S,
    #[prop(optional)] class: Option<&'static str>,
    children: Children,
) -> impl IntoView
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let form = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok());
            if let Some(data) = form.and_then(|f| web_sys::FormData::new_with_form(&f).ok()) {
                ev.prevent_default();
                action.dispatch(args(&Fields(data)));
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, action, args);
    };
    view! {
        <form action=S::url() method="post" class=class on:submit=on_submit>
            {children()}
        </form>
    }
}
