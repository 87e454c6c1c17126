#![recursion_limit = "256"]
//! pg-console's pages, components and server-function declarations.
//! Server-function bodies are thin: they call the native domain layer
//! (`domain`), which the server crate provides as context.

pub mod access;
pub mod api;
mod codec;
mod components;
pub mod error;
pub mod format;
mod pages;
mod routes;
#[cfg(feature = "ssr")]
pub mod serve;

use components::sync_hydrate::SyncHydrate;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    Lazy, StaticSegment,
};

#[cfg(feature = "ssr")]
pub use api::ServerContext;

/// The Content-Security-Policy of a page: scripts only with this
/// response's nonce (the hydration scripts carry it; what they load is
/// trusted through 'strict-dynamic'), WebAssembly compilation allowed, styles
/// and everything else from the console itself, no framing.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The HTML document around the app (server-side rendering).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(v) = http::HeaderValue::from_str(&page_csp(&nonce.to_string())) {
            res.insert_header(http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    components::time::provide_time_display();
    view! {
        <Stylesheet id="leptos" href="/pkg/pg-console.css"/>
        <Title text="pg-console"/>
        <Router>
            <TopBar/>
            <main>
                <Routes fallback=|| view! { <p class="notice">"Page not found."</p> }>
                    // The landing page, in the main module; the others load theirs (routes.rs).
                    <Route path=StaticSegment("") view=|| SyncHydrate(pages::overview::OverviewPage())/>
                    <Route path=StaticSegment("login") view={Lazy::<routes::LoginRoute>::new()}/>
                    <Route path=StaticSegment("audit") view={Lazy::<routes::AuditRoute>::new()}/>
                    <Route path=StaticSegment("admin") view={Lazy::<routes::AdminRoute>::new()}/>
                    <Route path=StaticSegment("backups") view={Lazy::<routes::BackupsRoute>::new()}/>
                    <Route path=StaticSegment("logs") view={Lazy::<routes::LogsRoute>::new()}/>
                    <Route path=StaticSegment("timeline") view={Lazy::<routes::TimelineRoute>::new()}/>
                    <Route path=StaticSegment("member") view={Lazy::<routes::MemberRoute>::new()}/>
                </Routes>
            </main>
        </Router>
    }
}

/// The top bar: navigation for what the user may see, who is logged in, log out.
#[component]
fn TopBar() -> impl IntoView {
    let me = crate::codec::resource(|| (), |_| api::whoami());
    let paused = crate::codec::resource(|| (), |_| api::cluster_paused());
    Effect::new(move |_| {
        if let Ok(h) = set_interval_with_handle(move || paused.refetch(), std::time::Duration::from_secs(3)) {
            on_cleanup(move || h.clear());
        }
    });
    let maintenance = move || {
        Suspend::new(async move {
            matches!(paused.await, Ok(true)).then(|| {
                view! {
                    <span class="maintenance-badge" data-testid="maintenance-badge">
                        "MAINTENANCE MODE: automatic failover is paused"
                    </span>
                }
            })
        })
    };
    let user_part = move || {
        Suspend::new(async move {
            me.await.ok().map(|me| {
                let admin = me.can_admin.then(|| {
                    view! {
                        <a href="/audit" data-testid="nav-audit">"Audit"</a>
                        <a href="/admin" data-testid="nav-admin">"Admin"</a>
                    }
                });
                view! {
                    <nav>
                        <a href="/">"Overview"</a>
                        <a href="/backups" data-testid="nav-backups">"Backups"</a>
                        <a href="/timeline" data-testid="nav-timeline">"Timeline"</a>
                        {me.can_read_logs.then(|| view! { <a href="/logs" data-testid="nav-logs">"Logs"</a> })}
                        {admin}
                    </nav>
                    <components::time::TimeSwitch/>
                    <span class="who" data-testid="whoami" data-role=me.role.as_str()>
                        {me.name.clone()}" · "{me.role.as_str()}
                    </span>
                    <form method="post" action="/logout" class="logout">
                        <button type="submit" data-testid="logout">"Log out"</button>
                    </form>
                }
            })
        })
    };
    view! {
        <header class="topbar">
            <a class="brand" href="/">"pg-console"</a>
            <Transition fallback=|| ()>{maintenance}</Transition>
            <Transition fallback=|| ()>{user_part}</Transition>
        </header>
    }
}
