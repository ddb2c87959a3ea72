//! The fake's field management: server-side apply and strategic-merge patches on one
//! Deployment's JSON, with field ownership kept per leaf for two managers — whoever wrote the
//! object first (`kubectl`, as `kubectl apply -k` of the manifests) and `loadgen`.
//!
//! Modelled: a forced apply sets every leaf it names and takes it over when the value changes
//! (shared when equal); a leaf loadgen applied before and leaves out now is released, and
//! removed when nobody else holds it; `containers` is a list keyed by `name`; a strategic
//! `null` deletes the field for every manager. Not modelled: conflicts without `force`, other
//! list types, `$patch` directives, defaulting.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A leaf's place: object keys, with `containers` items keyed by their `name`.
pub type Path = Vec<String>;

/// Who holds which leaf.
#[derive(Debug, Default)]
pub struct Owners {
    pub kubectl: BTreeSet<Path>,
    pub loadgen: BTreeSet<Path>,
}

impl Owners {
    /// Everything in `obj` (but status and server-set metadata) belongs to `kubectl`.
    pub fn first_writer(obj: &Value) -> Owners {
        let mut kubectl = BTreeSet::new();
        let mut spec_only = obj.clone();
        if let Some(m) = spec_only.as_object_mut() {
            m.remove("status");
        }
        leaves(&spec_only, &mut Vec::new(), &mut kubectl);
        Owners {
            kubectl,
            loadgen: BTreeSet::new(),
        }
    }
}

/// Every leaf path of `v`.
pub fn leaves(v: &Value, at: &mut Path, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                at.push(k.clone());
                leaves(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) if at.last().is_some_and(|k| k == "containers") => {
            for item in items {
                let name = item["name"].as_str().unwrap_or_default();
                at.push(format!("[{name}]"));
                leaves(item, at, out);
                at.pop();
            }
        }
        _ => {
            out.insert(at.clone());
        }
    }
}

/// The value at `path`, if any.
pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(name) => cur.as_array()?.iter().find(|c| c["name"] == name)?,
            None => cur.get(seg)?,
        };
    }
    Some(cur)
}

/// Sets `path` in `v`, creating objects (and named containers) on the way.
pub fn set(v: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *v = value;
        return;
    };
    let mut cur = v;
    for seg in parents {
        cur = child_mut(cur, seg, true).expect("created");
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    cur[last.as_str()] = value;
}

/// Removes `path` from `v` (and objects it leaves empty).
pub fn remove(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = &mut *v;
    for seg in parents {
        match child_mut(cur, seg, false) {
            Some(c) => cur = c,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

fn child_mut<'a>(cur: &'a mut Value, seg: &str, create: bool) -> Option<&'a mut Value> {
    match seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(name) => {
            if !cur.is_array() {
                if !create {
                    return None;
                }
                *cur = Value::Array(Vec::new());
            }
            let items = cur.as_array_mut()?;
            let at = match items.iter().position(|c| c["name"] == name) {
                Some(i) => i,
                None if create => {
                    items.push(serde_json::json!({ "name": name }));
                    items.len() - 1
                }
                None => return None,
            };
            items.get_mut(at)
        }
        None => {
            if !cur.is_object() {
                if !create {
                    return None;
                }
                *cur = Value::Object(Map::new());
            }
            let m = cur.as_object_mut()?;
            if !m.contains_key(seg) && !create {
                return None;
            }
            Some(m.entry(seg.to_string()).or_insert(Value::Null))
        }
    }
}

/// A forced server-side apply by `loadgen` of `body` onto `obj`.
pub fn apply(obj: &mut Value, owners: &mut Owners, body: &Value) {
    let mut applied = BTreeSet::new();
    let mut cfg = body.clone();
    if let Some(m) = cfg.as_object_mut() {
        // Identity, not opinions.
        for k in ["apiVersion", "kind"] {
            m.remove(k);
        }
    }
    leaves(&cfg, &mut Vec::new(), &mut applied);
    applied.retain(|p| p.as_slice() != ["metadata", "name"]);
    for path in &applied {
        let value = get(&cfg, path).cloned().unwrap_or(Value::Null);
        if get(obj, path) != Some(&value) {
            owners.kubectl.remove(path);
        }
        set(obj, path, value);
    }
    for released in owners.loadgen.difference(&applied) {
        if !owners.kubectl.contains(released) {
            remove(obj, released);
        }
    }
    owners.loadgen = applied;
}

/// A strategic-merge patch: maps merged, `containers` by name, `null` deletes.
pub fn strategic(obj: &mut Value, owners: &mut Owners, patch: &Value) {
    let mut all = BTreeSet::new();
    leaves(patch, &mut Vec::new(), &mut all);
    for path in all {
        match get(patch, &path) {
            Some(Value::Null) => {
                remove(obj, &path);
                owners.kubectl.remove(&path);
                owners.loadgen.remove(&path);
            }
            Some(v) => set(obj, &path, v.clone()),
            None => {}
        }
    }
}
