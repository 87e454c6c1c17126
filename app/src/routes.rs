//! The pages other than the Overview, as lazily loaded routes. In the
//! browser each is a WASM module of its own (scripts/build splits the front
//! end at these `#[lazy_route]`s), fetched before its page hydrates or when
//! it is first navigated to. The main module holds the shell, the router,
//! what every page uses and the Overview, the landing page, which needs
//! nothing more; another page adds its own module and the chunks it shares
//! with others (docs/benchmarks.md: what each page's first visit
//! downloads). On the server they render as any route does.
//!
//! Each view is erased through `into_any_sync`: the route hydrates
//! asynchronously (its module is awaited), its page's tree synchronously.

use crate::components::sync_hydrate::IntoAnySync;
use crate::pages;
use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

/// The login page.
#[derive(Debug)]
pub struct LoginRoute;

#[lazy_route]
impl LazyRoute for LoginRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        pages::login::LoginPage().into_any_sync()
    }
}

/// The audit log.
#[derive(Debug)]
pub struct AuditRoute;

#[lazy_route]
impl LazyRoute for AuditRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        pages::audit::AuditPageView().into_any_sync()
    }
}

/// Accounts and sessions.
#[derive(Debug)]
pub struct AdminRoute;

#[lazy_route]
impl LazyRoute for AdminRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        pages::admin::AdminPage().into_any_sync()
    }
}

/// Backups, restores and the WAL archive.
#[derive(Debug)]
pub struct BackupsRoute;

#[lazy_route]
impl LazyRoute for BackupsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        pages::backups::BackupsPage().into_any_sync()
    }
}

/// The containers' logs.
#[derive(Debug)]
pub struct LogsRoute;

#[lazy_route]
impl LazyRoute for LogsRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        pages::logs::LogsPage().into_any_sync()
    }
}

/// The incident timeline.
#[derive(Debug)]
pub struct TimelineRoute;

#[lazy_route]
impl LazyRoute for TimelineRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        pages::timeline::TimelinePageView().into_any_sync()
    }
}

/// One member's page.
#[derive(Debug)]
pub struct MemberRoute;

#[lazy_route]
impl LazyRoute for MemberRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        pages::member::MemberPage().into_any_sync()
    }
}
