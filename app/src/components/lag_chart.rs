//! Replication lag charts, drawn as SVG by the app (no chart library): a
//! sparkline per replica on the Overview, a larger chart on the member's
//! page. Solid: receive lag; dashed: replay lag; the dotted line is the
//! healthy bound. The geometry is `model::lag::ChartScale`'s.

use crate::components::sync_hydrate::IntoAnySync;
use leptos::prelude::*;
use model::lag::{ChartScale, LagHistory, LagSample, LagSeries};
use model::topology::human_bytes;

use crate::format::utc_time;

fn receive(s: &LagSample) -> Option<u64> {
    s.receive
}

fn replay(s: &LagSample) -> Option<u64> {
    s.replay
}

/// The part of the range before the first sample (the console was not
/// running yet, or the member was not a replica): shaded, so a short
/// history does not read as a quiet hour. Its width, if any.
fn unrecorded(scale: &ChartScale, series: &LagSeries, step_ms: i64) -> Option<f64> {
    let first = series.samples.first().map_or(scale.to_ms, |s| s.at_ms);
    (first - scale.from_ms > step_ms).then(|| scale.x(first))
}

/// The worst lag of a series over its range.
fn peak(series: &LagSeries) -> u64 {
    series.samples.iter().filter_map(LagSample::worst).max().unwrap_or(0)
}

fn lines(scale: &ChartScale, series: &LagSeries) -> impl IntoView {
    let solid = scale
        .polylines(&series.samples, receive)
        .into_iter()
        .map(|p| view! { <polyline class="lag-receive" points=p/> })
        .collect_view();
    let dashed = scale
        .polylines(&series.samples, replay)
        .into_iter()
        .map(|p| view! { <polyline class="lag-replay" points=p/> })
        .collect_view();
    view! { {solid}{dashed} }
}

/// A replica's last hour in a small sparkline (narrow enough that the
/// topology table still fits its card), linking to its page.
#[component]
pub fn LagSparkline(history: LagHistory, member: String) -> impl IntoView {
    let Some(series) = history.of(&member).cloned() else {
        return view! { <span class="muted" data-testid="lag-sparkline-empty">"no history yet"</span> }.into_any_sync();
    };
    let scale = ChartScale::fit(&history, &[&series], SPARK_W, SPARK_H);
    let bound = scale.y(history.threshold_bytes);
    let none = unrecorded(&scale, &series, history.range.step_ms())
        .map(|w| view! { <rect class="lag-none" x="0" y="0" width=w.to_string() height=SPARK_H.to_string()/> });
    let peak = peak(&series);
    let title = format!(
        "{member}, last hour: worst lag {} (scale up to {}); solid receive, dashed replay",
        human_bytes(peak),
        human_bytes(scale.max_bytes)
    );
    view! {
        <a href=format!("/member?name={member}") class="sparkline" data-testid="lag-sparkline"
            data-member=member.clone() data-peak=peak.to_string() data-points=series.samples.len().to_string()>
            <svg viewBox=format!("0 0 {SPARK_W} {SPARK_H}") width=SPARK_W.to_string() height=SPARK_H.to_string() role="img">
                <title>{title}</title>
                {none}
                <line class="lag-bound" x1="0" x2=SPARK_W.to_string() y1=bound.to_string() y2=bound.to_string()/>
                {lines(&scale, &series)}
            </svg>
        </a>
    }
    .into_any_sync()
}

const SPARK_W: f64 = 72.0;
const SPARK_H: f64 = 20.0;
const W: f64 = 720.0;
const H: f64 = 200.0;

/// The member page's chart: axes in bytes and UTC time, the bound, a legend.
#[component]
pub fn LagChart(history: LagHistory, member: String) -> impl IntoView {
    let series = history.of(&member).cloned().unwrap_or(LagSeries {
        member: member.clone(),
        samples: vec![],
    });
    let scale = ChartScale::fit(&history, &[&series], W, H);
    let bound = scale.y(history.threshold_bytes);
    let y_labels = [scale.max_bytes, scale.max_bytes / 2, 0]
        .map(|v| view! { <text class="axis" x="-6" y=(scale.y(v) + 4.0).to_string() text-anchor="end">{human_bytes(v)}</text> })
        .collect_view();
    let mid = history.from_ms + (history.to_ms - history.from_ms) / 2;
    let x_labels = [(history.from_ms, "start"), (mid, "middle"), (history.to_ms, "end")]
        .map(|(t, anchor)| {
            view! { <text class="axis" x=scale.x(t).to_string() y=(H + 16.0).to_string() text-anchor=anchor>{utc_time(t)}</text> }
        })
        .collect_view();
    let none = unrecorded(&scale, &series, history.range.step_ms()).map(|w| {
        view! {
            <rect class="lag-none" data-testid="lag-unrecorded" x="0" y="0" width=w.to_string() height=H.to_string()/>
            {(w > 90.0).then(|| view! {
                <text class="axis" x=(w / 2.0).to_string() y=(H - 10.0).to_string() text-anchor="middle">"no samples"</text>
            })}
        }
    });
    let latest = series.samples.last().copied();
    let empty = series.samples.is_empty();
    view! {
        <figure class="lag-chart" data-testid="lag-chart" data-member=member.clone()
            data-peak=peak(&series).to_string() data-points=series.samples.len().to_string()
            data-latest=latest.and_then(|s| s.worst()).map(|v| v.to_string()).unwrap_or_default()>
            <svg viewBox=format!("-70 -10 {} {}", W + 80.0, H + 30.0) role="img">
                <title>{format!("Replication lag of {member}")}</title>
                <rect class="plot" x="0" y="0" width=W.to_string() height=H.to_string()/>
                {none}
                <line class="lag-bound" x1="0" x2=W.to_string() y1=bound.to_string() y2=bound.to_string()/>
                <text class="axis bound" x=(W - 4.0).to_string() y=(bound - 4.0).to_string() text-anchor="end">
                    {format!("healthy bound {}", human_bytes(history.threshold_bytes))}
                </text>
                {y_labels}
                {x_labels}
                {lines(&scale, &series)}
            </svg>
            <figcaption class="muted">
                <span class="legend receive">"— receive lag"</span>" "
                <span class="legend replay">"- - replay lag"</span>
                {if empty {
                    " · nothing recorded in this range yet".to_string()
                } else {
                    format!(
                        " · worst {} · now: receive {}, replay {} · one point per {} s, the worst of it",
                        human_bytes(peak(&series)),
                        latest.and_then(|s| s.receive).map(human_bytes).unwrap_or_else(|| "unknown".into()),
                        latest.and_then(|s| s.replay).map(human_bytes).unwrap_or_else(|| "unknown".into()),
                        history.range.step_ms() / 1000
                    )
                }}
            </figcaption>
        </figure>
    }
}
