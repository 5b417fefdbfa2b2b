//! Runtime values: the bootstrap's static layers plus the admin layer that `POST
//! /runtime_modify?key=value` writes, so a scenario can switch a fault on and off live
//! (`fault.http.abort.abort_percent`…). Reads are lock-free (the admin layer is swapped whole).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::config::model::{RuntimeLayer, RuntimeLayerKind};

pub struct Runtime {
    layers: Vec<RuntimeLayer>,
    /// Flattened static layers, later layers winning.
    statics: HashMap<String, String>,
    admin: ArcSwap<HashMap<String, String>>,
    /// Envoy accepts `/runtime_modify` only with an admin layer; a bootstrap without
    /// `layered_runtime` gets one by default.
    has_admin_layer: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RuntimeError {
    #[error("No admin layer specified")]
    NoAdminLayer,
}

impl Runtime {
    pub fn new(layers: &[RuntimeLayer]) -> Runtime {
        let mut statics = HashMap::new();
        for layer in layers {
            if let (RuntimeLayerKind::Static, Some(v)) = (layer.kind, &layer.static_layer) {
                let mut flat = Vec::new();
                flatten("", v, &mut flat);
                statics.extend(flat);
            }
        }
        Runtime {
            layers: layers.to_vec(),
            statics,
            admin: ArcSwap::from_pointee(HashMap::new()),
            has_admin_layer: layers.is_empty()
                || layers.iter().any(|l| l.kind == RuntimeLayerKind::Admin),
        }
    }

    /// The value of `key`: the admin layer's, else the static layers'.
    pub fn get(&self, key: &str) -> Option<String> {
        self.admin
            .load()
            .get(key)
            .cloned()
            .or_else(|| self.statics.get(key).cloned())
    }

    /// A numeric value, else `default` (a value that is not a number is ignored, as in Envoy).
    pub fn number(&self, key: &str, default: f64) -> f64 {
        self.get(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// `/runtime_modify`: sets (or, with an empty value, removes) admin-layer keys.
    pub fn modify(&self, pairs: &[(String, String)]) -> Result<(), RuntimeError> {
        if !self.has_admin_layer {
            return Err(RuntimeError::NoAdminLayer);
        }
        let mut next = (**self.admin.load()).clone();
        for (k, v) in pairs {
            if v.is_empty() {
                next.remove(k);
            } else {
                next.insert(k.clone(), v.clone());
            }
        }
        self.admin.store(Arc::new(next));
        Ok(())
    }

    /// `/runtime`: every layer's name and, per key, each layer's value and the final one.
    pub fn to_json(&self) -> Value {
        let mut names: Vec<String> = self.layers.iter().map(|l| l.name.clone()).collect();
        let admin_index = match self
            .layers
            .iter()
            .position(|l| l.kind == RuntimeLayerKind::Admin)
        {
            Some(i) => Some(i),
            None if self.has_admin_layer => {
                names.push("admin".into());
                Some(names.len() - 1)
            }
            None => None,
        };
        let mut entries = serde_json::Map::new();
        let mut put = |key: &str, i: usize, value: &str| {
            let entry = entries.entry(key.to_string()).or_insert_with(
                || serde_json::json!({"layer_values": vec![""; names.len()], "final_value": ""}),
            );
            entry["layer_values"][i] = Value::String(value.into());
            entry["final_value"] = Value::String(value.into());
        };
        for (i, layer) in self.layers.iter().enumerate() {
            if let (RuntimeLayerKind::Static, Some(v)) = (layer.kind, &layer.static_layer) {
                let mut flat = Vec::new();
                flatten("", v, &mut flat);
                for (k, v) in flat {
                    put(&k, i, &v);
                }
            }
        }
        if let Some(i) = admin_index {
            let admin = self.admin.load();
            let mut keys: Vec<&String> = admin.keys().collect();
            keys.sort();
            for k in keys {
                put(k, i, &admin[k]);
            }
        }
        serde_json::json!({"layers": names, "entries": entries})
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, kind: RuntimeLayerKind, v: Option<Value>) -> RuntimeLayer {
        RuntimeLayer {
            name: name.into(),
            static_layer: v,
            kind,
        }
    }

    #[test]
    fn the_admin_layer_overrides_static_values_and_can_be_cleared() {
        let rt = Runtime::new(&[
            layer(
                "static",
                RuntimeLayerKind::Static,
                Some(serde_json::json!({"fault": {"http": {"abort": {"abort_percent": 10}}}})),
            ),
            layer("admin", RuntimeLayerKind::Admin, None),
        ]);
        assert_eq!(rt.number("fault.http.abort.abort_percent", 0.0), 10.0);
        rt.modify(&[("fault.http.abort.abort_percent".into(), "100".into())])
            .unwrap();
        assert_eq!(rt.number("fault.http.abort.abort_percent", 0.0), 100.0);
        rt.modify(&[("fault.http.abort.abort_percent".into(), String::new())])
            .unwrap();
        assert_eq!(rt.number("fault.http.abort.abort_percent", 0.0), 10.0);
    }

    #[test]
    fn without_an_admin_layer_modify_is_refused() {
        let rt = Runtime::new(&[layer("static", RuntimeLayerKind::Static, None)]);
        assert_eq!(
            rt.modify(&[("a".into(), "1".into())]),
            Err(RuntimeError::NoAdminLayer)
        );
        assert!(Runtime::new(&[])
            .modify(&[("a".into(), "1".into())])
            .is_ok());
    }
}
