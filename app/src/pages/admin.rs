//! Admin: users and their sessions. Changes are made with the CLI for now
//! (`pg-console user ...`, `pg-console session revoke ...`).

use leptos::prelude::*;

use crate::api::admin_users;
use crate::format::utc_time;

#[component]
pub fn AdminPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| admin_users());
    let body = move || {
        Suspend::new(async move {
            match data.await {
                Err(e) => view! { <p class="banner error">{format!("Cannot read users: {e}")}</p> }.into_any(),
                Ok(v) => {
                    let users = v
                        .users
                        .into_iter()
                        .map(|u| {
                            let state = if u.disabled {
                                "disabled"
                            } else if u.locked_until_ms > 0 {
                                "locked"
                            } else {
                                "active"
                            };
                            view! {
                                <tr data-testid="user-row" data-user=u.name.clone()>
                                    <td class="name">{u.name.clone()}</td><td>{u.role.as_str()}</td><td>{state}</td>
                                    <td class="num">{u.failed_logins}</td><td>{utc_time(u.created_at_ms)}</td>
                                </tr>
                            }
                        })
                        .collect_view();
                    let sessions = v
                        .sessions
                        .into_iter()
                        .map(|s| {
                            view! {
                                <tr data-testid="session-row">
                                    <td><code>{s.id_prefix}</code></td><td>{s.user}</td><td>{s.role.as_str()}</td>
                                    <td>{s.source_ip}</td><td>{utc_time(s.created_at_ms)}</td><td>{utc_time(s.last_seen_ms)}</td>
                                </tr>
                            }
                        })
                        .collect_view();
                    view! {
                        <section class="panel">
                            <h2>"Users"</h2>
                            <table><thead><tr><th>"Name"</th><th>"Role"</th><th>"State"</th><th>"Failed logins"</th><th>"Created"</th></tr></thead>
                            <tbody>{users}</tbody></table>
                        </section>
                        <section class="panel">
                            <h2>"Sessions"</h2>
                            <table><thead><tr><th>"Id"</th><th>"User"</th><th>"Role"</th><th>"From"</th><th>"Since"</th><th>"Last seen"</th></tr></thead>
                            <tbody>{sessions}</tbody></table>
                            <p class="notice">"Manage users and sessions on the server: pg-console user add|passwd|set-role|disable, pg-console session revoke."</p>
                        </section>
                    }
                    .into_any()
                }
            }
        })
    };
    view! { <section class="page admin"><Transition fallback=|| view! { <p class="notice">"Loading…"</p> }>{body}</Transition></section> }
}
