use leptos::prelude::*;
use model::{Endpoint, EndpointKind};

#[component]
pub fn EndpointsPanel(endpoints: Vec<Endpoint>) -> impl IntoView {
    let cards = endpoints
        .into_iter()
        .map(|e| {
            let (title, kind) = match e.kind {
                EndpointKind::Write => ("Write endpoint (primary)", "write"),
                EndpointKind::Read => ("Read endpoint (replicas)", "read"),
            };
            let (routing, routing_class) = if !e.known {
                ("routing unknown: HAProxy stats unavailable".to_string(), "unknown")
            } else if e.routes_to.is_empty() {
                ("routes nowhere: no server is UP".to_string(), "down")
            } else {
                (format!("routes to {}", e.routes_to.join(", ")), "up")
            };
            let conn = e.connection_string.clone();
            view! {
                <div class="endpoint card" data-testid="endpoint" data-kind=kind>
                    <h3>{title}</h3>
                    <div class="address">{e.address.clone()}</div>
                    <div class=format!("routing {routing_class}") data-testid="endpoint-routing">{routing}</div>
                    <div class="copyable">
                        <code data-testid="connection-string">{conn.clone()}</code>
                        <CopyButton text=conn/>
                    </div>
                </div>
            }
        })
        .collect_view();
    view! {
        <section class="panel">
            <h2>"Endpoints"</h2>
            <div class="endpoints">{cards}</div>
        </section>
    }
}

/// Copies `text` to the clipboard (browser only) and says so.
#[component]
fn CopyButton(text: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let on_click = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let clipboard = window().navigator().clipboard();
            let _ = clipboard.write_text(&text);
            copied.set(true);
            set_timeout(move || copied.set(false), std::time::Duration::from_millis(1500));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <button class="copy" on:click=on_click title="Copy to clipboard">
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}
