//! Type erasure that compiles a view's tree once in the browser.
//!
//! The router erases each page's view, and the pages erase the branches
//! of their `match`es ([`IntoAny`]). Tachys' `AnyView` keeps a pointer to
//! every method of the view it erases, asynchronous hydration included, so
//! the WASM held each erased tree twice: once to hydrate, once to hydrate
//! asynchronously. The console hydrates asynchronously only down to its
//! routes (each route's module is loaded first: `routes.rs`); a page's own
//! tree needs nothing loaded, so [`SyncHydrate`] answers asynchronous
//! hydration with its synchronous one and the second copy is never compiled
//! (docs/benchmarks.md: the WASM's size). Everything else is the wrapped
//! view's own behaviour.

use leptos::prelude::*;
use leptos::tachys::html::attribute::{any_attribute::AnyAttribute, Attribute};
use leptos::tachys::hydration::Cursor;
use leptos::tachys::ssr::StreamBuilder;
use leptos::tachys::view::add_attr::AddAnyAttr;
use leptos::tachys::view::any_view::AnyView;
use leptos::tachys::view::{Position, PositionState, Render, RenderHtml};

/// A view whose asynchronous hydration is its synchronous hydration.
pub struct SyncHydrate<T>(pub T);

/// `into_any`, with the view's tree compiled once: use it instead of
/// `IntoAny::into_any` everywhere in the console.
pub trait IntoAnySync {
    fn into_any_sync(self) -> AnyView;
}

impl<T: RenderHtml + Send> IntoAnySync for T {
    fn into_any_sync(self) -> AnyView {
        SyncHydrate(self).into_any()
    }
}

impl<T: Render> Render for SyncHydrate<T> {
    type State = T::State;

    fn build(self) -> Self::State {
        self.0.build()
    }

    fn rebuild(self, state: &mut Self::State) {
        self.0.rebuild(state)
    }
}

impl<T: RenderHtml> RenderHtml for SyncHydrate<T> {
    type AsyncOutput = T::AsyncOutput;
    type Owned = SyncHydrate<T::Owned>;

    const MIN_LENGTH: usize = T::MIN_LENGTH;
    const EXISTS: bool = T::EXISTS;

    fn dry_resolve(&mut self) {
        self.0.dry_resolve()
    }

    async fn resolve(self) -> Self::AsyncOutput {
        self.0.resolve().await
    }

    fn html_len(&self) -> usize {
        self.0.html_len()
    }

    fn to_html_with_buf(
        self,
        buf: &mut String,
        position: &mut Position,
        escape: bool,
        mark_branches: bool,
        extra_attrs: Vec<AnyAttribute>,
    ) {
        self.0
            .to_html_with_buf(buf, position, escape, mark_branches, extra_attrs)
    }

    fn to_html_async_with_buf<const OUT_OF_ORDER: bool>(
        self,
        buf: &mut StreamBuilder,
        position: &mut Position,
        escape: bool,
        mark_branches: bool,
        extra_attrs: Vec<AnyAttribute>,
    ) where
        Self: Sized,
    {
        self.0
            .to_html_async_with_buf::<OUT_OF_ORDER>(buf, position, escape, mark_branches, extra_attrs)
    }

    fn hydrate<const FROM_SERVER: bool>(self, cursor: &Cursor, position: &PositionState) -> Self::State {
        self.0.hydrate::<FROM_SERVER>(cursor, position)
    }

    async fn hydrate_async(self, cursor: &Cursor, position: &PositionState) -> Self::State {
        self.0.hydrate::<true>(cursor, position)
    }

    fn into_owned(self) -> Self::Owned {
        SyncHydrate(self.0.into_owned())
    }
}

impl<T: AddAnyAttr> AddAnyAttr for SyncHydrate<T> {
    type Output<SomeNewAttr: Attribute> = SyncHydrate<T::Output<SomeNewAttr>>;

    fn add_any_attr<NewAttr: Attribute>(self, attr: NewAttr) -> Self::Output<NewAttr>
    where
        Self::Output<NewAttr>: RenderHtml,
    {
        SyncHydrate(self.0.add_any_attr(attr))
    }
}

#[cfg(test)]
mod tests {
    /// Every erasure in the console goes through `into_any_sync` (a plain
    /// `into_any` compiles the erased tree's asynchronous hydration too).
    #[test]
    fn the_console_erases_views_only_through_into_any_sync() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("read app/src") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("sync_hydrate.rs") {
                    let src = std::fs::read_to_string(&path).expect("read source");
                    if src.contains(".into_any()") {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("src"),
            &mut found,
        );
        assert!(
            found.is_empty(),
            "use .into_any_sync() instead of .into_any() in {found:?}"
        );
        // A route's view is wrapped in SyncHydrate, or is a lazy route whose
        // view is erased through into_any_sync (routes.rs).
        let lib = include_str!("../lib.rs");
        let routes = lib.matches("<Route ").count();
        let eager = lib.matches("view=|| SyncHydrate(").count();
        let lazy = lib.matches("view={Lazy::<routes::").count();
        assert!(
            routes > 0 && eager + lazy == routes,
            "every route's view is wrapped in SyncHydrate or lazy"
        );
        let lazy_routes = include_str!("../routes.rs");
        assert_eq!(
            lazy_routes.matches("#[lazy_route]\nimpl").count(),
            lazy,
            "every lazy route is in routes.rs"
        );
        assert_eq!(
            lazy_routes.matches("fn view(").count(),
            lazy_routes.matches("().into_any_sync()\n").count(),
            "every lazy route's view is erased through into_any_sync"
        );
    }
}
