//! pg-console's pages, components and server-function declarations.
//! Server-function bodies are thin: they call the native domain layer
//! (`domain`), which the server crate provides as context.

pub mod api;
mod components;
pub mod format;
mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    StaticSegment,
};

#[cfg(feature = "ssr")]
pub use api::ServerContext;

/// The HTML document around the app (server-side rendering).
pub fn shell(options: LeptosOptions) -> impl IntoView {
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
    view! {
        <Stylesheet id="leptos" href="/pkg/pg-console.css"/>
        <Title text="pg-console"/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"pg-console"</a>
                <nav>
                    <a href="/">"Overview"</a>
                </nav>
            </header>
            <main>
                <Routes fallback=|| view! { <p class="notice">"Page not found."</p> }>
                    <Route path=StaticSegment("") view=pages::overview::OverviewPage/>
                </Routes>
            </main>
        </Router>
    }
}
