//! Times as the viewer reads them. The server, the audit log, its CSV and
//! the API stay in UTC. In the browser each time shows in the viewer's own
//! time zone, with the zone beside it and the full UTC date on hover, or in
//! UTC only: the top bar's switch, kept in this browser's localStorage.
//! Server-rendered HTML shows UTC and the browser switches once hydrated,
//! so both render the same text first.

use leptos::prelude::*;
use model::time::{clock_at_offset, clock_utc, zone_label};

/// Whether times show in the viewer's zone (false: UTC; always on the server).
#[derive(Clone, Copy)]
pub struct TimeDisplay {
    pub local: RwSignal<bool>,
}

#[cfg(feature = "hydrate")]
const STORAGE_KEY: &str = "pgc-times";

/// Provide the setting to the whole app; in the browser it is read from
/// localStorage (default: the viewer's zone).
pub fn provide_time_display() {
    let local = RwSignal::new(false);
    provide_context(TimeDisplay { local });
    // Effects run in the browser only, after hydration.
    Effect::new(move |_| local.set(stored().as_deref() != Some("utc")));
}

fn time_display() -> TimeDisplay {
    use_context().unwrap_or(TimeDisplay {
        local: RwSignal::new(false),
    })
}

#[cfg(feature = "hydrate")]
fn stored() -> Option<String> {
    web_sys::window()?.local_storage().ok()??.get_item(STORAGE_KEY).ok()?
}

#[cfg(not(feature = "hydrate"))]
fn stored() -> Option<String> {
    None
}

#[cfg(feature = "hydrate")]
fn store(value: &str) {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(STORAGE_KEY, value);
    }
}

#[cfg(not(feature = "hydrate"))]
fn store(_: &str) {}

/// The viewer's zone offset at that instant, in minutes east of UTC
/// (None on the server).
#[cfg(feature = "hydrate")]
fn offset_minutes(ms: i64) -> Option<i64> {
    let d = web_sys::js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    // JavaScript gives UTC minus local time.
    Some(-(d.get_timezone_offset() as i64))
}

#[cfg(not(feature = "hydrate"))]
fn offset_minutes(_: i64) -> Option<i64> {
    None
}

/// RFC 3339 in UTC: the `time` crate on the server, `Date` in the browser.
#[cfg(feature = "ssr")]
fn iso_utc(ms: i64) -> Option<String> {
    domain::datetime::format_rfc3339(ms)
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn iso_utc(ms: i64) -> Option<String> {
    web_sys::js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64))
        .to_iso_string()
        .as_string()
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
fn iso_utc(_: i64) -> Option<String> {
    None
}

/// `2026-11-30 21:06:40 UTC`, the same on the server and in the browser.
fn full_utc(ms: i64) -> String {
    iso_utc(ms)
        .and_then(|i| model::time::human_from_iso(&i))
        .unwrap_or_else(|| clock_utc(ms))
}

/// One instant: `22:06:40 UTC+1` in the viewer's zone (or `21:06:40 UTC`),
/// the full UTC date and time on hover.
#[component]
pub fn Time(ms: i64) -> impl IntoView {
    let d = time_display();
    let text = move || match (d.local.get(), offset_minutes(ms)) {
        (true, Some(off)) => format!("{} {}", clock_at_offset(ms, off), zone_label(off)),
        _ => clock_utc(ms),
    };
    view! { <time data-testid="time" data-ms=ms.to_string() title=full_utc(ms)>{text}</time> }
}

/// The top bar's switch between the viewer's zone and UTC only.
#[component]
pub fn TimeSwitch() -> impl IntoView {
    let d = time_display();
    let flip = move |_| {
        let local = !d.local.get_untracked();
        d.local.set(local);
        store(if local { "local" } else { "utc" });
    };
    view! {
        <button
            type="button"
            class="time-switch"
            data-testid="time-switch"
            data-local=move || d.local.get().to_string()
            title="Show times in your time zone or in UTC only (the audit log, its CSV and the API are always UTC)"
            on:click=flip
        >
            {move || if d.local.get() { "Times: your zone" } else { "Times: UTC" }}
        </button>
    }
}
