//! Access loggers: `envoy.access_loggers.file` (also the v2 `envoy.file_access_log` with
//! `config: {path, format}`), `stdout` and `stderr`, with text or JSON formats.

use super::super::model::{AccessLog, AccessLogFormat, AccessLogSink};
use super::extensions::{self, Category, ACCESS_LOGGERS};
use super::scalars;
use super::tls::data_source;
use super::{Decoder, Field, Message};

pub const ACCESS_LOG: Message = Message {
    name: "AccessLog",
    fields: &["name", "typed_config", "config"],
    ignored: &["filter"],
};

const FILE_ACCESS_LOG: Message = Message {
    name: "FileAccessLog",
    fields: &["path", "format", "json_format", "log_format"],
    ignored: &["typed_json_format"],
};

const STREAM_ACCESS_LOG: Message = Message {
    name: "StdoutAccessLog",
    fields: &["log_format"],
    ignored: &[],
};

const SUBSTITUTION_FORMAT_STRING: Message = Message {
    name: "SubstitutionFormatString",
    fields: &["text_format", "text_format_source", "json_format"],
    ignored: &[
        "omit_empty_values",
        "content_type",
        "formatters",
        "json_format_options",
    ],
};

const SUPPORTED: &str =
    "envoy.access_loggers.file, envoy.access_loggers.stdout, envoy.access_loggers.stderr";

/// A list of `access_log` entries.
pub fn access_logs(d: &mut Decoder, f: &Field) -> Vec<AccessLog> {
    d.seq(f)
        .iter()
        .filter_map(|item| access_log(d, item))
        .collect()
}

pub fn access_log(d: &mut Decoder, f: &Field) -> Option<AccessLog> {
    let o = d.obj(f, &ACCESS_LOG)?;
    let r = extensions::resolve(d, &o, Category::AccessLogger, ACCESS_LOGGERS.iter())?;
    match r.ext.as_str() {
        "envoy.access_loggers.file" => {
            let Some(c) = &r.config else {
                d.error(
                    o.field_ref(),
                    "the file access logger needs a config with a `path`",
                );
                return None;
            };
            let (sink, format) = file_config(d, c, r.config_is_any)?;
            Some(AccessLog {
                name: r.name,
                sink,
                format,
            })
        }
        "envoy.access_loggers.stdout" | "envoy.access_loggers.stderr" => {
            let format = match &r.config {
                Some(c) => {
                    let so = if r.config_is_any {
                        d.obj_any(c, &STREAM_ACCESS_LOG)?
                    } else {
                        d.obj(c, &STREAM_ACCESS_LOG)?
                    };
                    match so.get("log_format") {
                        Some(l) => substitution_format(d, &l)?,
                        None => AccessLogFormat::Default,
                    }
                }
                None => AccessLogFormat::Default,
            };
            let sink = if r.ext.ends_with("stdout") {
                AccessLogSink::Stdout
            } else {
                AccessLogSink::Stderr
            };
            Some(AccessLog {
                name: r.name,
                sink,
                format,
            })
        }
        other => {
            d.error_at_value(
                &r.at,
                format!("access logger `{other}` is not supported by meshsim"),
                Some(format!("supported: {SUPPORTED}")),
            );
            None
        }
    }
}

/// `FileAccessLog {path, log_format | format | json_format}`.
fn file_config(d: &mut Decoder, f: &Field, any: bool) -> Option<(AccessLogSink, AccessLogFormat)> {
    let o = if any {
        d.obj_any(f, &FILE_ACCESS_LOG)?
    } else {
        d.obj(f, &FILE_ACCESS_LOG)?
    };
    let path = match o.get("path") {
        Some(p) => scalars::string(d, &p)?,
        None => {
            d.missing(&o, "path");
            return None;
        }
    };
    if path.is_empty() {
        d.missing(&o, "path");
        return None;
    }
    let mut format = AccessLogFormat::Default;
    if let Some(l) = o.get("log_format") {
        format = substitution_format(d, &l)?;
    }
    if let Some(t) = o.get("format") {
        d.deprecated(
            "FileAccessLog.format",
            &t,
            "deprecated field `format` in FileAccessLog; loaded as `log_format.text_format_source`"
                .into(),
            "write `log_format: {text_format_source: {inline_string: \"...\"}}`".into(),
        );
        format = AccessLogFormat::Text(scalars::string(d, &t)?);
    }
    if let Some(j) = o.get("json_format") {
        d.deprecated(
            "FileAccessLog.json_format",
            &j,
            "deprecated field `json_format` in FileAccessLog; loaded as `log_format.json_format`"
                .into(),
            "write `log_format: {json_format: {...}}`".into(),
        );
        format = json_format(d, &j)?;
    }
    Some((AccessLogSink::File(path), format))
}

/// `SubstitutionFormatString`.
pub fn substitution_format(d: &mut Decoder, f: &Field) -> Option<AccessLogFormat> {
    let o = d.obj(f, &SUBSTITUTION_FORMAT_STRING)?;
    if let Some(t) = o.get("text_format_source") {
        let source = data_source(d, &t)?;
        return Some(AccessLogFormat::Text(
            String::from_utf8_lossy(&source.bytes).into_owned(),
        ));
    }
    if let Some(t) = o.get("text_format") {
        d.deprecated(
            "SubstitutionFormatString.text_format",
            &t,
            "deprecated field `text_format` in SubstitutionFormatString; loaded as `text_format_source`".into(),
            "write `text_format_source: {inline_string: \"...\"}`".into(),
        );
        return Some(AccessLogFormat::Text(scalars::string(d, &t)?));
    }
    if let Some(j) = o.get("json_format") {
        return json_format(d, &j);
    }
    Some(AccessLogFormat::Default)
}

fn json_format(d: &mut Decoder, f: &Field) -> Option<AccessLogFormat> {
    match f.node.to_json() {
        serde_json::Value::Object(map) => Some(AccessLogFormat::Json(map)),
        _ => {
            d.error_at_value(
                f,
                format!(
                    "`{}` must be a mapping of JSON keys to format strings",
                    f.name()
                ),
                None,
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::node::parse;
    use super::super::Mode;
    use super::*;
    use std::path::PathBuf;

    fn run(yaml: &str) -> (Vec<AccessLog>, Vec<String>) {
        let doc = parse(yaml).unwrap();
        let (k, v) = &doc.as_map().unwrap()[0];
        let f = Field::root(&doc).child(k, v);
        let mut d = Decoder::new(PathBuf::from("."), Mode::Bootstrap);
        let logs = access_logs(&mut d, &f);
        (logs, d.finish().into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn v2_file_logger_is_renamed_with_one_warning_each() {
        let (logs, w) = run(
            "access_log:\n- name: envoy.file_access_log\n  config: {path: /dev/stdout, format: \"%START_TIME%\\n\"}\n",
        );
        assert_eq!(logs[0].name, "envoy.access_loggers.file");
        assert_eq!(logs[0].sink, AccessLogSink::File("/dev/stdout".into()));
        assert_eq!(
            logs[0].format,
            AccessLogFormat::Text("%START_TIME%\n".into())
        );
        assert_eq!(w.len(), 3, "{w:?}");
    }

    #[test]
    fn v3_stdout_with_json_format() {
        let (logs, w) = run(
            "access_log:\n- name: envoy.access_loggers.stdout\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog\n    log_format: {json_format: {status: \"%RESPONSE_CODE%\"}}\n",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(logs[0].sink, AccessLogSink::Stdout);
        match &logs[0].format {
            AccessLogFormat::Json(m) => assert_eq!(m["status"], "%RESPONSE_CODE%"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsupported_logger_is_an_error() {
        let (_, e) = run(
            "access_log:\n- name: envoy.access_loggers.open_telemetry\n  typed_config: {\"@type\": type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig}\n",
        );
        assert_eq!(
            e,
            ["access logger `envoy.access_loggers.open_telemetry` is not supported by meshsim"]
        );
    }
}
