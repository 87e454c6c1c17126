//! A websocket on this page's origin that opens itself again after a drop
//! (after 1, 2, 4… at most 10 seconds) for as long as the view that opened
//! it lives. Each text message goes to `on_text`; when the socket closes,
//! `on_down` says whether to open it again (false: the view is done with it).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use leptos::prelude::on_cleanup;
use wasm_bindgen::{closure::Closure, JsCast};

struct Socket {
    path: String,
    on_text: Box<dyn Fn(String)>,
    on_down: Box<dyn Fn() -> bool>,
    /// False once the view is gone: no more reconnecting.
    alive: Cell<bool>,
    current: RefCell<Option<web_sys::WebSocket>>,
}

/// Follow `path` (e.g. `/ws/jobs`) until the calling view is cleaned up.
/// Returns false when no socket could be made at all (use polling then).
pub fn follow(path: &str, on_text: impl Fn(String) + 'static, on_down: impl Fn() -> bool + 'static) -> bool {
    let s = Rc::new(Socket {
        path: path.to_string(),
        on_text: Box::new(on_text),
        on_down: Box::new(on_down),
        alive: Cell::new(true),
        current: RefCell::new(None),
    });
    let ok = open(&s, 0);
    let guard = send_wrapper::SendWrapper::new(s);
    on_cleanup(move || {
        guard.alive.set(false);
        if let Some(ws) = guard.current.borrow_mut().take() {
            ws.set_onclose(None);
            let _ = ws.close();
        }
    });
    ok
}

fn open(s: &Rc<Socket>, attempt: u32) -> bool {
    let Some(loc) = web_sys::window().map(|w| w.location()) else {
        return false;
    };
    let scheme = if loc.protocol().ok().as_deref() == Some("https:") {
        "wss"
    } else {
        "ws"
    };
    let url = format!("{scheme}://{}{}", loc.host().unwrap_or_default(), s.path);
    let Ok(ws) = web_sys::WebSocket::new(&url) else {
        return false;
    };
    let me = s.clone();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
        if let Some(text) = ev.data().as_string() {
            (me.on_text)(text);
        }
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let me = s.clone();
    let on_close = Closure::<dyn FnMut(web_sys::CloseEvent)>::new(move |_ev: web_sys::CloseEvent| {
        if !me.alive.get() || !(me.on_down)() {
            return;
        }
        let again = me.clone();
        let delay = (1000u32 << attempt.min(3)).min(10_000);
        let retry = Closure::once_into_js(move || {
            if again.alive.get() {
                open(&again, attempt + 1);
            }
        });
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(retry.unchecked_ref(), delay as i32);
        }
    });
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    on_close.forget();
    *s.current.borrow_mut() = Some(ws);
    true
}
