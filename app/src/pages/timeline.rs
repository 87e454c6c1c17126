//! The incident timeline: what happened to the cluster, newest first, from
//! Docker, HAProxy, Patroni, the console's own observations and operations,
//! on one clock. Filters by member or container, kind and UTC range (a GET
//! form, so a filtered view is a link); CSV export of the same filter.

use crate::components::sync_hydrate::IntoAnySync;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use model::timeline::{EventKind, TimelineEvent, TimelinePage};

use crate::api::timeline_page;
use crate::components::time::Time;

const FILTERS: [&str; 4] = ["subject", "kind", "from", "to"];

#[component]
pub fn TimelinePageView() -> impl IntoView {
    let q = use_query_map();
    let param = move |k: &'static str| q.with(|m| m.get(k).map(|s| s.to_string()).unwrap_or_default());
    let opt = move |k: &'static str| Some(param(k)).filter(|v| !v.is_empty());
    let data = crate::codec::resource(
        move || (opt("subject"), opt("kind"), opt("from"), opt("to")),
        |(s, k, f, t)| timeline_page(s, k, f, t),
    );
    let body = move || {
        Suspend::new(async move {
            match data.await {
                Err(e) => view! { <p class="banner error" data-testid="timeline-error">{format!("Cannot read the timeline: {e}")}</p> }.into_any_sync(),
                Ok(page) => {
                    let filters = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(FILTERS.map(|k| (k, param(k))))
                        .finish();
                    view! { <TimelineTable page filters/> }.into_any_sync()
                }
            }
        })
    };
    let kinds = EventKind::ALL
        .into_iter()
        .map(|k| view! { <option value=k.as_str() selected=move || param("kind") == k.as_str()>{k.as_str()}</option> })
        .collect_view();
    view! {
        <section class="page timeline-page panel">
            <h2>"Incident timeline"</h2>
            <form class="filters" method="get" action="/timeline">
                <input name="subject" placeholder="member or container (e.g. pg-0)" value=move || param("subject")/>
                <select name="kind">
                    <option value="">"every kind"</option>
                    {kinds}
                </select>
                <label class="muted">"from (UTC)" <input type="datetime-local" step="1" name="from" value=move || param("from")/></label>
                <label class="muted">"to (UTC)" <input type="datetime-local" step="1" name="to" value=move || param("to")/></label>
                <button type="submit">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <p class="notice">"Loading…"</p> }>{body}</Transition>
        </section>
    }
}

#[component]
fn TimelineTable(page: TimelinePage, filters: String) -> impl IntoView {
    let empty = page.events.is_empty();
    let rows = page.events.into_iter().map(|e| view! { <EventRow e/> }).collect_view();
    view! {
        <div class="summary">
            <span class="muted">{format!(
                "Newest first; events are kept {} days.{}",
                page.retention_days,
                if page.more { " Only the newest 500 are shown: narrow the filters or export." } else { "" }
            )}</span>
            <a class="refreshed" href=format!("/timeline/export.csv?{filters}") data-testid="timeline-csv">"Export CSV"</a>
        </div>
        {empty.then(|| view! { <p class="notice">"Nothing recorded for these filters."</p> })}
        <table class="timeline">
            <thead><tr><th>"When"</th><th>"Kind"</th><th>"Member"</th><th>"What happened"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn EventRow(e: TimelineEvent) -> impl IntoView {
    let kind = e.kind.as_str();
    let link = e.link.map(|href| {
        let label = match e.kind {
            EventKind::Container => "log of that minute",
            EventKind::Operation => "audit entries",
            _ => "details",
        };
        view! { <a href=href data-testid="timeline-link">{label}</a> }
    });
    let (subject, subject_attr) = (e.subject.clone(), e.subject);
    view! {
        <tr data-testid="timeline-row" data-kind=kind data-subject=subject_attr data-ms=e.at_ms.to_string()>
            <td><Time ms=e.at_ms/></td>
            <td><span class=format!("kind {kind}")>{kind}</span></td>
            <td>{subject}</td>
            <td class="what">{e.text}</td>
            <td>{link}</td>
        </tr>
    }
}
