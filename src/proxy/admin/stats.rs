//! `/stats` and `/stats/prometheus`: the query parameters Envoy accepts, mapped onto the store's
//! renderers.

use http::StatusCode;

use crate::proxy::body::Body;
use crate::proxy::server::Shared;
use crate::proxy::stats::{HistogramBucketsMode, RenderOptions};

use super::{json, respond, text};

/// `forced_format` is `Some("prometheus")` for `/stats/prometheus`.
pub fn handle(
    shared: &Shared,
    params: &[(String, String)],
    forced_format: Option<&str>,
) -> http::Response<Body> {
    shared.refresh_gauges();
    let mut options = RenderOptions::default();
    let mut format = forced_format.map(str::to_string);
    for (key, value) in params {
        match key.as_str() {
            "usedonly" => options.used_only = true,
            "filter" => match regex::Regex::new(value) {
                Ok(re) => options.filter = Some(re),
                Err(error) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("Invalid re2 regex: {error}\n"),
                    )
                }
            },
            "format" if forced_format.is_none() => format = Some(value.clone()),
            "histogram_buckets" => {
                options.histogram_buckets = match value.as_str() {
                    "cumulative" => HistogramBucketsMode::Cumulative,
                    "summary" | "" => HistogramBucketsMode::Summary,
                    other => {
                        return text(
                            StatusCode::BAD_REQUEST,
                            format!("usage: /stats?histogram_buckets=(cumulative|summary); unsupported value '{other}'\n"),
                        )
                    }
                }
            }
            "text_readouts" => options.prometheus_text_readouts = true,
            _ => {}
        }
    }
    match format.as_deref() {
        None | Some("text") => text(StatusCode::OK, shared.store.render_text(&options)),
        Some("json") => json(shared.store.render_json(&options)),
        Some("prometheus") => respond(
            StatusCode::OK,
            "text/plain; charset=UTF-8",
            shared.store.render_prometheus(&options),
        ),
        Some(other) => text(
            StatusCode::BAD_REQUEST,
            format!("usage: /stats?format=(json|prometheus|text); unsupported format '{other}'\n"),
        ),
    }
}
