//! The audit log (admin): newest first, filters, paging, CSV export, and the
//! hash chain's status.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::fetch_audit_page;
use crate::format::utc_time;

#[component]
pub fn AuditPageView() -> impl IntoView {
    let q = use_query_map();
    let param = move |k: &'static str| q.with(|m| m.get(k).map(|s| s.to_string()).unwrap_or_default());
    let data = Resource::new(
        move || {
            (
                (param("user"), param("action"), param("result")),
                (param("from"), param("to")),
                param("page").parse::<i64>().unwrap_or(1),
            )
        },
        |((u, a, r), (f, t), p)| fetch_audit_page(u, a, r, f, t, p),
    );
    let body = move || {
        Suspend::new(async move {
            match data.await {
                Err(e) => view! { <p class="banner error">{format!("Cannot read the audit log: {e}")}</p> }.into_any(),
                Ok(p) => {
                    let (u, a, r) = (param("user"), param("action"), param("result"));
                    let (f, t) = (param("from"), param("to"));
                    let filters = format!("user={u}&action={a}&result={r}&from={f}&to={t}");
                    let pages = ((p.total + p.per_page - 1) / p.per_page).max(1);
                    let chain_class = if p.chain_broken {
                        "status-pill degraded"
                    } else {
                        "status-pill healthy"
                    };
                    let rows = p
                        .rows
                        .into_iter()
                        .map(|row| {
                            view! {
                                <tr data-testid="audit-row" data-action=row.action.clone() data-result=row.result.clone()>
                                    <td class="num">{row.id}</td>
                                    <td>{utc_time(row.at_ms)}</td>
                                    <td>{row.user}" "<span class="muted">{row.role}</span></td>
                                    <td>{row.source_ip}</td>
                                    <td>{row.action.clone()}</td>
                                    <td>{row.target}</td>
                                    <td class=format!("result {}", row.result)>{row.result.clone()}</td>
                                    <td class="params">{row.params}" "{row.error}</td>
                                </tr>
                            }
                        })
                        .collect_view();
                    view! {
                        <div class="summary">
                            <span class=chain_class data-testid="chain-status">{format!("Hash chain {}", p.chain_status)}</span>
                            <span class="muted">{format!("{} matching entries · page {} of {}", p.total, p.page, pages)}</span>
                            <a class="refreshed" href=format!("/audit/export.csv?{filters}") data-testid="csv-export">"Export CSV"</a>
                        </div>
                        <table class="audit">
                            <thead><tr>
                                <th>"#"</th><th>"When (UTC)"</th><th>"User"</th><th>"From"</th><th>"Action"</th>
                                <th>"Target"</th><th>"Result"</th><th>"Details"</th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                        <div class="pager">
                            {(p.page > 1).then(|| view! { <a href=format!("/audit?{filters}&page={}", p.page - 1)>"← newer"</a> })}
                            {(p.page < pages).then(|| view! { <a href=format!("/audit?{filters}&page={}", p.page + 1)>"older →"</a> })}
                        </div>
                    }
                    .into_any()
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
