#![recursion_limit = "256"]
//! Hydrates the server-rendered app in the browser. Nothing else lives here.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Asynchronous hydration: every page but the Overview is a route with a
    // module of its own (app/src/routes.rs, split by scripts/build), loaded
    // before the page hydrates.
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) else {
            return;
        };
        leptos::mount::hydrate_from_async(body, app::App).await.forget();
        // A User Timing mark: when the page became interactive (what
        // `scripts/bench paint` measures, and any real-user monitoring can read).
        if let Some(perf) = web_sys::window().and_then(|w| w.performance()) {
            let _ = perf.mark("pgc-hydrated");
        }
    });
}
