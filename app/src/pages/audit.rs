//! The audit log (admin): newest first, filters, pages by key ("older" /
//! "newer" from the last / first row shown, never an offset), CSV export,
//! and the hash chain's state. A long value is shown cut, with a way to see
//! it whole, so one value cannot widen the page.

use crate::components::sync_hydrate::IntoAnySync;
use crate::components::time::Time;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use model::auth::{AuditPage, AuditRow};

use crate::api::fetch_audit_page;
use crate::format::utc_time;

/// Longest value shown in a cell before it is cut.
const CELL_CHARS: usize = 120;

/// A cell's text: whole when short, else the start and a "show all".
fn cell(text: String) -> impl IntoView {
    let chars = text.chars().count();
    if chars <= CELL_CHARS {
        return view! { <span>{text}</span> }.into_any_sync();
    }
    let head: String = text.chars().take(CELL_CHARS).collect();
    view! {
        <details data-testid="cut-value">
            <summary>{head}{format!("… ({chars} characters: show all)")}</summary>
            <span class="whole">{text}</span>
        </details>
    }
    .into_any_sync()
}

#[component]
pub fn AuditPageView() -> impl IntoView {
    let q = use_query_map();
    let param = move |k: &'static str| q.with(|m| m.get(k).map(|s| s.to_string()).unwrap_or_default());
    let id_param = move |k: &'static str| param(k).parse::<i64>().ok();
    let data = crate::codec::resource(
        move || {
            (
                (param("user"), param("action"), param("result")),
                (param("from"), param("to")),
                (id_param("before"), id_param("after")),
            )
        },
        |((u, a, r), (f, t), (before, after))| fetch_audit_page(u, a, r, f, t, before, after),
    );
    let body = move || {
        Suspend::new(async move {
            match data.await {
                Err(e) => view! { <p class="banner error" data-testid="audit-error">{format!("Cannot read the audit log: {e}")}</p> }.into_any_sync(),
                Ok(page) => {
                    let filters = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(["user", "action", "result", "from", "to"].map(|k| (k, param(k))))
                        .finish();
                    view! { <AuditTable page filters/> }.into_any_sync()
                }
            }
        })
    };
    view! {
        <section class="page audit-page panel">
            <h2>"Audit log"</h2>
            <form class="filters" method="get" action="/audit">
                <input name="user" placeholder="user" value=move || param("user")/>
                <input name="action" placeholder="action (e.g. login_failed)" value=move || param("action")/>
                <select name="result">
                    <option value="">"any result"</option>
                    <option value="ok" selected=move || param("result") == "ok">"ok"</option>
                    <option value="refused" selected=move || param("result") == "refused">"refused"</option>
                    <option value="failed" selected=move || param("result") == "failed">"failed"</option>
                </select>
                <label class="muted">"from (UTC)" <input type="datetime-local" name="from" value=move || param("from")/></label>
                <label class="muted">"to (UTC)" <input type="datetime-local" name="to" value=move || param("to")/></label>
                <button type="submit">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <p class="notice">"Loading…"</p> }>{body}</Transition>
        </section>
    }
}

/// One page of rows, the chain's state, the export link and the pager;
/// `filters` is the query string of the filters in force.
#[component]
fn AuditTable(page: AuditPage, filters: String) -> impl IntoView {
    let p = page;
    let chain_class = if p.chain_broken {
        "status-pill degraded"
    } else {
        "status-pill healthy"
    };
    let (first, last) = (p.rows.first().map(|r| r.id), p.rows.last().map(|r| r.id));
    let rows = p
        .rows
        .into_iter()
        .map(|row| view! { <AuditRowView row/> })
        .collect_view();
    let full = p
        .full_check_at_ms
        .map(|ms| format!("whole chain checked at {}; newer rows on each load", utc_time(ms)))
        .unwrap_or_else(|| "the whole chain has not been checked since the console started".into());
    view! {
        <div class="summary">
            <span class=chain_class data-testid="chain-status" title=full>{format!("Hash chain {}", p.chain_status)}</span>
            <a class="refreshed" href=format!("/audit/export.csv?{filters}") data-testid="csv-export">"Export CSV"</a>
        </div>
        <details class="muted">
            <summary>"Signed head (keep a copy outside the console)"</summary>
            <code class="signed-head" data-testid="signed-head">{p.signed_head}</code>
            <p>"`pg-console audit verify --head '…'` later proves the log still holds this row unchanged."</p>
        </details>
        <table class="audit">
            <thead><tr>
                <th>"#"</th><th>"When (UTC)"</th><th>"User"</th><th>"From"</th><th>"Action"</th>
                <th>"Target"</th><th>"Result"</th><th>"Details"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <div class="pager">
            {p.has_newer.then(|| view! { <a data-testid="audit-newer" href=format!("/audit?{filters}&after={}", first.unwrap_or(0))>"← newer"</a> })}
            {p.has_older.then(|| view! { <a data-testid="audit-older" href=format!("/audit?{filters}&before={}", last.unwrap_or(0))>"older →"</a> })}
        </div>
    }
}

#[component]
fn AuditRowView(row: AuditRow) -> impl IntoView {
    view! {
        <tr data-testid="audit-row" data-action=row.action.clone() data-result=row.result.clone()>
            <td class="num">{row.id}</td>
            <td><Time ms=row.at_ms/></td>
            <td>{cell(row.user)}" "<span class="muted">{row.role}</span></td>
            <td>{cell(row.source_ip)}</td>
            <td>{row.action.clone()}</td>
            <td>{cell(row.target)}</td>
            <td class=format!("result {}", row.result)>{row.result.clone()}</td>
            <td class="params">{cell(format!("{} {}", row.params, row.error))}</td>
        </tr>
    }
}
