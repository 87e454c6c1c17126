#![recursion_limit = "256"]
//! Hydrates the server-rendered app in the browser. Nothing else lives here.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A User Timing mark: when the page became interactive (what
    // `scripts/bench paint` measures, and any real-user monitoring can read).
    if let Some(perf) = web_sys::window().and_then(|w| w.performance()) {
        let _ = perf.mark("pgc-hydrated");
    }
}
