//! Envoy-compatible access logging.
//!
//! Operators who move from Envoy to meshsim keep their access log configs and
//! their log parsers, so this module reproduces Envoy's behaviour rather than
//! inventing its own:
//!
//! * [`Format::parse_text`] — Envoy's substitution language (`%REQ(X?Y):Z%`,
//!   `%START_TIME(%s.%3f)%`, `%%`, ...), validated at config time;
//! * [`Format::envoy_default`] — Envoy's default line, byte for byte;
//! * [`Format::json`] — `json_format` with typed values (numbers stay numbers,
//!   unset values are `null`), keys sorted as Envoy emits them;
//! * [`ResponseFlags`] — Envoy's flags, short and long names, Envoy's order;
//! * [`Sink`] — file / stdout / stderr destinations fed through a bounded
//!   channel so the request path never blocks.
//!
//! Typical use:
//!
//! ```text
//! let logger = AccessLogger::new(Format::envoy_default(), Sink::file("/var/log/meshsim/access.log")?);
//! // per request, after the response completed:
//! logger.log(&stream_info);
//! // on graceful shutdown, while the logger is still held:
//! logger.sink().flush().await?;
//! ```

mod flags;
mod format;
mod json;
mod operator;
mod render;
mod sink;
mod stream_info;
mod time;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use flags::ResponseFlags;
pub use format::{Format, FormatError, ENVOY_DEFAULT_FORMAT};
pub use sink::{Sink, SinkError, DEFAULT_CHANNEL_CAPACITY, FLUSH_INTERVAL};
pub use stream_info::{Protocol, StreamInfo};

/// A format bound to a sink: what one `access_log` entry of a listener config becomes.
#[derive(Debug, Clone)]
pub struct AccessLogger {
    format: Arc<Format>,
    sink: Sink,
}

impl AccessLogger {
    /// Binds `format` to `sink`.
    pub fn new(format: Format, sink: Sink) -> AccessLogger {
        AccessLogger {
            format: Arc::new(format),
            sink,
        }
    }

    /// Renders the line for `info` and queues it; never blocks (see [`Sink::log`]).
    pub fn log(&self, info: &StreamInfo) {
        self.sink.log(self.format.render(info));
    }

    /// The format.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The sink (for [`Sink::flush`], [`Sink::dropped`]).
    pub fn sink(&self) -> &Sink {
        &self.sink
    }
}
