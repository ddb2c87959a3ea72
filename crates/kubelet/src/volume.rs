//! Volumes, materialised as folders under the pod's own state folder and bound over each
//! container's `mountPath` in the pod's mount namespace: `emptyDir`, `configMap`, `secret`,
//! `downwardAPI` and `projected` (service-account token from a TokenRequest bound to the pod,
//! the cluster CA from `kube-root-ca.crt`, the namespace). Tokens are written once, not
//! refreshed (a testbed pod lives minutes; the token an hour).

use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
    VolumeProjection,
};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::env::get_opt;
use crate::fields::field_value;

/// One bind mount in a container's mount namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// What volumes are made from.
pub struct VolumeContext<'a> {
    pub client: &'a Client,
    pub pod: &'a Pod,
    pub pod_ip: String,
    pub host_ip: String,
    /// `<pod dir>/volumes`.
    pub root: PathBuf,
}

/// Writes every volume of the pod; an absent required ConfigMap or Secret is an error the pod
/// waits on.
pub async fn materialise(ctx: &VolumeContext<'_>) -> Result<(), String> {
    let spec = ctx.pod.spec.as_ref().ok_or("pod without spec")?;
    for v in spec.volumes.iter().flatten() {
        let dir = ctx.root.join(&v.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        volume(ctx, v, &dir).await?;
    }
    Ok(())
}

async fn volume(ctx: &VolumeContext<'_>, v: &Volume, dir: &Path) -> Result<(), String> {
    let ns = ctx.pod.metadata.namespace.clone().unwrap_or_default();
    if v.empty_dir.is_some() {
        return Ok(());
    }
    if let Some(cm) = &v.config_map {
        let optional = cm.optional.unwrap_or(false);
        if let Some(obj) = get_opt::<ConfigMap>(ctx.client, &ns, &cm.name, optional).await? {
            write_items(dir, config_map_data(&obj), cm.items.as_deref())?;
        }
        return Ok(());
    }
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let optional = s.optional.unwrap_or(false);
        if let Some(obj) = get_opt::<Secret>(ctx.client, &ns, &name, optional).await? {
            write_items(dir, secret_data(&obj), s.items.as_deref())?;
        }
        return Ok(());
    }
    if let Some(d) = &v.downward_api {
        return downward(ctx, dir, d.items.as_deref().unwrap_or(&[]));
    }
    if let Some(p) = &v.projected {
        for src in p.sources.iter().flatten() {
            projection(ctx, &ns, dir, src).await?;
        }
        return Ok(());
    }
    Err(format!(
        "volume {:?}: only emptyDir, configMap, secret, downwardAPI and projected volumes \
         exist in the kubelet stand-in",
        v.name
    ))
}

async fn projection(
    ctx: &VolumeContext<'_>,
    ns: &str,
    dir: &Path,
    src: &VolumeProjection,
) -> Result<(), String> {
    if let Some(t) = &src.service_account_token {
        let token = token(ctx, ns, t.audience.clone(), t.expiration_seconds).await?;
        write(&dir.join(&t.path), token.as_bytes())?;
    }
    if let Some(cm) = &src.config_map {
        let optional = cm.optional.unwrap_or(false);
        if let Some(obj) = get_opt::<ConfigMap>(ctx.client, ns, &cm.name, optional).await? {
            write_items(dir, config_map_data(&obj), cm.items.as_deref())?;
        }
    }
    if let Some(s) = &src.secret {
        let optional = s.optional.unwrap_or(false);
        if let Some(obj) = get_opt::<Secret>(ctx.client, ns, &s.name, optional).await? {
            write_items(dir, secret_data(&obj), s.items.as_deref())?;
        }
    }
    if let Some(d) = &src.downward_api {
        downward(ctx, dir, d.items.as_deref().unwrap_or(&[]))?;
    }
    Ok(())
}

/// A token for the pod's service account, bound to the pod (as the kubelet's projected volume).
async fn token(
    ctx: &VolumeContext<'_>,
    ns: &str,
    audience: Option<String>,
    expiration: Option<i64>,
) -> Result<String, String> {
    let spec = ctx.pod.spec.as_ref().ok_or("pod without spec")?;
    let sa = spec
        .service_account_name
        .clone()
        .unwrap_or("default".into());
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience.into_iter().collect(),
            expiration_seconds: Some(expiration.unwrap_or(3607)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: ctx.pod.metadata.name.clone(),
                uid: ctx.pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), ns);
    let got = api
        .create_token_request(&sa, &PostParams::default(), &req)
        .await
        .map_err(|e| format!("token for service account {ns}/{sa}: {e}"))?;
    got.status
        .map(|s| s.token)
        .ok_or_else(|| format!("token for service account {ns}/{sa}: empty answer"))
}

fn config_map_data(cm: &ConfigMap) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    out.extend(
        cm.binary_data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone())),
    );
    out
}

fn secret_data(s: &Secret) -> Vec<(String, Vec<u8>)> {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// Every key as a file named after it, or only the `items` listed, at their paths.
fn write_items(
    dir: &Path,
    data: Vec<(String, Vec<u8>)>,
    items: Option<&[KeyToPath]>,
) -> Result<(), String> {
    match items {
        None => data.iter().try_for_each(|(k, v)| write(&dir.join(k), v)),
        Some(items) => {
            items
                .iter()
                .try_for_each(|item| match data.iter().find(|(k, _)| *k == item.key) {
                    Some((_, v)) => write(&dir.join(&item.path), v),
                    None => Err(format!("no key {:?} to project", item.key)),
                })
        }
    }
}

fn downward(
    ctx: &VolumeContext<'_>,
    dir: &Path,
    items: &[DownwardAPIVolumeFile],
) -> Result<(), String> {
    for item in items {
        let Some(f) = &item.field_ref else {
            return Err(format!("downwardAPI {:?}: only fieldRef items", item.path));
        };
        let v = field_value(ctx.pod, &f.field_path, &ctx.pod_ip, &ctx.host_ip)?;
        write(&dir.join(&item.path), v.as_bytes())?;
    }
    Ok(())
}

/// Writes a file whole: into a temporary name, then renamed over the old one, so a program
/// reading it (a downward-API file refreshed under it) never sees half of it.
fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let tmp = path.with_extension("standin-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Rewrites the downward-API files (plain and projected) from the pod as it is now: a kubelet
/// refreshes them when labels or annotations change (a coordinator hands out a start time that
/// way).
pub fn refresh_downward(ctx: &VolumeContext<'_>) -> Result<(), String> {
    let spec = ctx.pod.spec.as_ref().ok_or("pod without spec")?;
    for v in spec.volumes.iter().flatten() {
        let dir = ctx.root.join(&v.name);
        if let Some(d) = &v.downward_api {
            downward(ctx, &dir, d.items.as_deref().unwrap_or(&[]))?;
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(d) = &src.downward_api {
                downward(ctx, &dir, d.items.as_deref().unwrap_or(&[]))?;
            }
        }
    }
    Ok(())
}

/// The bind mounts of one container: each `volumeMount` (with its `subPath`) from the pod's
/// volume folders.
pub fn mounts(root: &Path, c: &Container) -> Vec<Mount> {
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let mut source = root.join(&m.name);
            if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                source = source.join(sub);
            }
            Mount {
                source,
                target: PathBuf::from(&m.mount_path),
                read_only: m.read_only.unwrap_or(false),
            }
        })
        .collect()
}
