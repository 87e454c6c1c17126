//! Admin: users and their sessions, with the same changes the CLI offers
//! (add, role, disable/enable, password, revoke a session). The server checks
//! the admin role on every call and audits each change. Changes that could
//! hand a stolen session more power (a new admin, a role, a password,
//! disabling or enabling, someone else's session) need the admin's own
//! password, typed once at the top and sent with each of them.

use crate::components::post_form::PostForm;
use crate::components::sync_hydrate::IntoAnySync;
use crate::components::time::Time;
use leptos::prelude::*;

use crate::api::{admin_users, AdminAddUser, AdminRevokeSession, AdminSetDisabled, AdminSetPassword, AdminSetRole};
use model::auth::{SessionRow, UserRow};

use crate::error::ApiError;

fn outcome(v: Option<Result<String, ApiError>>) -> Option<(&'static str, String)> {
    v.map(|r| match r {
        Ok(m) => ("banner info", m),
        Err(e) => ("banner error", e.message),
    })
}

/// The page's changes, and the admin's own password sent with those that need it.
#[derive(Clone, Copy)]
struct AdminActions {
    add: ServerAction<AdminAddUser>,
    set_role: ServerAction<AdminSetRole>,
    set_disabled: ServerAction<AdminSetDisabled>,
    set_password: ServerAction<AdminSetPassword>,
    revoke: ServerAction<AdminRevokeSession>,
    current: RwSignal<String>,
}

impl AdminActions {
    fn new() -> Self {
        Self {
            add: ServerAction::new(),
            set_role: ServerAction::new(),
            set_disabled: ServerAction::new(),
            set_password: ServerAction::new(),
            revoke: ServerAction::new(),
            current: RwSignal::new(String::new()),
        }
    }

    /// How many changes finished: the users are read again after each.
    fn versions(&self) -> [RwSignal<usize>; 5] {
        [
            self.add.version(),
            self.set_role.version(),
            self.set_disabled.version(),
            self.set_password.version(),
            self.revoke.version(),
        ]
    }

    /// The outcome of the change at `index` in [`Self::versions`].
    fn outcome(&self, index: usize) -> Option<Result<String, ApiError>> {
        match index {
            0 => self.add.value().get(),
            1 => self.set_role.value().get(),
            2 => self.set_disabled.value().get(),
            3 => self.set_password.value().get(),
            _ => self.revoke.value().get(),
        }
    }

    /// The admin's password as a form field (step-up).
    fn step_up(&self) -> impl IntoView {
        let current = self.current;
        view! { <input type="hidden" name="current_password" prop:value=move || current.get()/> }
    }
}

#[component]
pub fn AdminPage() -> impl IntoView {
    let actions = AdminActions::new();
    let data = crate::codec::resource(move || actions.versions().map(|v| v.get()), |_| admin_users());
    // The outcome of the change that finished last.
    let last = RwSignal::new(None::<usize>);
    for (i, v) in actions.versions().into_iter().enumerate() {
        Effect::new(move |_| {
            if v.get() > 0 {
                last.set(Some(i));
            }
        });
    }
    let message = Memo::new(move |_| outcome(actions.outcome(last.get()?)));
    let body = move || {
        Suspend::new(async move {
            match data.await {
                Err(e) => view! { <p class="banner error">{format!("Cannot read users: {e}")}</p> }.into_any_sync(),
                Ok(v) => {
                    let users = v
                        .users
                        .into_iter()
                        .map(|user| view! { <UserRow user actions/> })
                        .collect_view();
                    let sessions = v
                        .sessions
                        .into_iter()
                        .map(|session| view! { <SessionRow session actions/> })
                        .collect_view();
                    view! {
                        <section class="panel">
                            <h2>"Users"</h2>
                            <table class="users"><thead><tr>
                                <th>"Name"</th><th>"Role"</th><th>"State"</th><th>"Failed logins"</th><th>"Created"</th><th></th>
                            </tr></thead>
                            <tbody>{users}</tbody></table>
                        </section>
                        <section class="panel">
                            <h2>"Sessions"</h2>
                            <table><thead><tr>
                                <th>"Id"</th><th>"User"</th><th>"Role"</th><th>"From"</th><th>"Since"</th><th>"Last seen"</th><th></th>
                            </tr></thead>
                            <tbody>{sessions}</tbody></table>
                        </section>
                    }
                    .into_any_sync()
                }
            }
        })
    };
    let current = actions.current;
    view! {
        <section class="page admin">
            {move || message.get().map(|(class, m)| view! { <div class=class data-testid="admin-message">{m}</div> })}
            <section class="panel">
                <label>"Your password "
                    <input type="password" autocomplete="current-password" data-testid="admin-current-password"
                        placeholder="needed to add an admin, change a role or password, disable or enable a user, or end someone else's session"
                        size="60" on:input=move |ev| current.set(event_target_value(&ev)) prop:value=move || current.get()/>
                </label>
            </section>
            <AddUserForm actions/>
            <Transition fallback=|| view! { <p class="notice">"Loading…"</p> }>{body}</Transition>
        </section>
    }
}

#[component]
fn AddUserForm(actions: AdminActions) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>"Add a user"</h2>
            <PostForm action=actions.add class="filters" args=|f| AdminAddUser {
                name: f.text("name"), role: f.text("role"), password: f.text("password"), current_password: f.text("current_password"),
            }>
                {actions.step_up()}
                <input name="name" placeholder="user name" required/>
                <select name="role">
                    <option value="viewer">"viewer"</option>
                    <option value="operator">"operator"</option>
                    <option value="admin">"admin"</option>
                </select>
                <input type="password" name="password" placeholder="password (12+ characters)" autocomplete="new-password" required/>
                <button type="submit" data-testid="add-user">"Add user"</button>
            </PostForm>
        </section>
    }
}

/// One user: role, state, and the changes an admin can make.
#[component]
fn UserRow(user: UserRow, actions: AdminActions) -> impl IntoView {
    let u = user;
    let state = if u.disabled {
        "disabled"
    } else if u.locked_until_ms > 0 {
        "locked"
    } else {
        "active"
    };
    let role = u.role.as_str();
    let (n1, n2, n3) = (u.name.clone(), u.name.clone(), u.name.clone());
    view! {
        <tr data-testid="user-row" data-user=u.name.clone() data-state=state>
            <td class="name">{u.name.clone()}</td>
            <td>
                <PostForm action=actions.set_role class="inline" args=|f| AdminSetRole {
                    name: f.text("name"), role: f.text("role"), current_password: f.text("current_password"),
                }>
                    <input type="hidden" name="name" value=n1/>
                    {actions.step_up()}
                    <select name="role">
                        <option value="viewer" selected=role == "viewer">"viewer"</option>
                        <option value="operator" selected=role == "operator">"operator"</option>
                        <option value="admin" selected=role == "admin">"admin"</option>
                    </select>
                    <button type="submit">"Set role"</button>
                </PostForm>
            </td>
            <td>{state}</td>
            <td class="num">{u.failed_logins}</td>
            <td><Time ms=u.created_at_ms/></td>
            <td>
                <PostForm action=actions.set_disabled class="inline" args=|f| AdminSetDisabled {
                    name: f.text("name"), disabled: f.text("disabled") == "true", current_password: f.text("current_password"),
                }>
                    <input type="hidden" name="name" value=n2/>
                    {actions.step_up()}
                    <input type="hidden" name="disabled" value=(!u.disabled).to_string()/>
                    <button type="submit" data-testid="toggle-disabled">
                        {if u.disabled { "Enable" } else { "Disable" }}
                    </button>
                </PostForm>
                <PostForm action=actions.set_password class="inline" args=|f| AdminSetPassword {
                    name: f.text("name"), password: f.text("password"), current_password: f.text("current_password"),
                }>
                    <input type="hidden" name="name" value=n3/>
                    {actions.step_up()}
                    <input type="password" name="password" placeholder="new password" autocomplete="new-password" required/>
                    <button type="submit">"Set password"</button>
                </PostForm>
            </td>
        </tr>
    }
}

#[component]
fn SessionRow(session: SessionRow, actions: AdminActions) -> impl IntoView {
    let s = session;
    view! {
        <tr data-testid="session-row" data-user=s.user.clone()>
            <td><code>{s.id_prefix.clone()}</code></td><td>{s.user.clone()}</td><td>{s.role.as_str()}</td>
            <td>{s.source_ip}</td><td><Time ms=s.created_at_ms/></td><td><Time ms=s.last_seen_ms/></td>
            <td>
                <PostForm action=actions.revoke class="inline" args=|f| AdminRevokeSession {
                    id_prefix: f.text("id_prefix"), current_password: f.text("current_password"),
                }>
                    <input type="hidden" name="id_prefix" value=s.id_prefix/>
                    {actions.step_up()}
                    <button type="submit" data-testid="revoke-session">"Revoke"</button>
                </PostForm>
            </td>
        </tr>
    }
}
