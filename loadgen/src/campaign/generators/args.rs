//! The command line of one shard: `loadgen attack …` arguments that make a generator process
//! (local, or a pod of the step's Indexed Job) run exactly the campaign's [`AttackSpec`] for its
//! shard, from the common start time. One translation of a spec into flags, for both.

use std::time::{Duration, SystemTime};

use loadgen_engine::load::Arrival;
use loadgen_engine::tls::TlsSpec;
use loadgen_engine::AttackSpec;
use loadgen_model::shard::{unix_ms, Shard};

/// Why a spec cannot be handed to a shard process.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgsError {
    #[error("a sharded step needs a one-stage load (got {0} stages)")]
    Stages(usize),
    #[error("a sharded step's request body must be text (it goes on a command line)")]
    BinaryBody,
}

/// A duration as `loadgen attack` reads it, exactly (nanoseconds).
fn exact(d: Duration) -> String {
    format!("{}ns", d.as_nanos())
}

/// `attack URL …` for `shard` of `spec`, starting at `start_at`; `--shard` and `--start-at`
/// are left out when `None` (an Indexed Job's pods add their own index and start-time file).
pub fn attack_args(
    spec: &AttackSpec,
    shard: Option<Shard>,
    start_at: Option<SystemTime>,
) -> Result<Vec<String>, ArgsError> {
    let [stage] = spec.load.stages.as_slice() else {
        return Err(ArgsError::Stages(spec.load.stages.len()));
    };
    let r = &spec.request;
    let mut a = vec![
        "attack".to_string(),
        format!("{}{}", spec.url.trim_end_matches('/'), r.path),
        "--rate".into(),
        stage.to_rps.to_string(),
        "--duration".into(),
        exact(stage.duration),
        "--method".into(),
        r.method.to_string(),
        "--timeout".into(),
        exact(spec.limits.timeout),
        "--max-in-flight".into(),
        spec.limits.max_in_flight.to_string(),
        "--json".into(),
    ];
    if let Some(at) = start_at {
        a.extend(["--start-at".into(), unix_ms(at).to_string()]);
    }
    if stage.from_rps != stage.to_rps {
        a.extend(["--ramp-from".into(), stage.from_rps.to_string()]);
    }
    if let Arrival::Poisson { seed } = spec.load.arrival {
        a.extend(["--poisson".into(), "--seed".into(), seed.to_string()]);
    }
    for (k, v) in &r.headers {
        a.extend(["--header".into(), format!("{k}: {v}")]);
    }
    if !r.body.is_empty() {
        let body = std::str::from_utf8(&r.body).map_err(|_| ArgsError::BinaryBody)?;
        // `@…` would name a file: `@@` keeps a literal `@`.
        let body = if body.starts_with('@') {
            format!("@{body}")
        } else {
            body.to_string()
        };
        a.extend(["--body".into(), body]);
    }
    if let Some(n) = spec.limits.connections {
        a.extend(["--connections".into(), n.to_string()]);
    }
    if let Some(n) = spec.limits.max_connections {
        a.extend(["--max-connections".into(), n.to_string()]);
    }
    a.extend(["--io".into(), spec.limits.io.to_string()]);
    for e in &spec.endpoints {
        a.extend(["--endpoint".into(), e.clone()]);
    }
    if !spec.endpoints.is_empty() {
        a.extend(["--balance".into(), spec.balance.to_string()]);
    }
    tls_args(&spec.tls, &mut a);
    if let Some(h) = spec.http2 {
        a.extend([
            "--http2".into(),
            "--max-streams".into(),
            h.max_streams.to_string(),
        ]);
    }
    if let Some(s) = shard {
        a.extend(["--shard".into(), s.to_string()]);
    }
    Ok(a)
}

/// The TLS flags of a spec that differ from the default (none for plain HTTP).
fn tls_args(tls: &TlsSpec, a: &mut Vec<String>) {
    let path = |p: &std::path::Path| p.display().to_string();
    if let Some(p) = &tls.cacert {
        a.extend(["--cacert".into(), path(p)]);
    }
    if tls.insecure {
        a.push("--insecure".into());
    }
    if let (Some(c), Some(k)) = (&tls.cert, &tls.key) {
        a.extend(["--cert".into(), path(c), "--key".into(), path(k)]);
    }
    if !tls.resume {
        a.extend(["--tls-resume".into(), "off".into()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen_engine::load::{Load, Stage};
    use loadgen_engine::target::Reach;
    use loadgen_engine::template::RequestTemplate;
    use loadgen_engine::{Balance, Limits};

    fn spec(body: &str, arrival: Arrival) -> AttackSpec {
        AttackSpec {
            url: "http://127.0.0.1:9/".into(),
            endpoints: vec!["http://127.0.0.1:10".into(), "http://127.0.0.1:11".into()],
            balance: Balance::Connection,
            tls: Default::default(),
            http2: None,
            reach: Reach::Loopback,
            load: Load {
                stages: vec![Stage {
                    duration: Duration::from_millis(1500),
                    from_rps: 10.0,
                    to_rps: 30.5,
                }],
                arrival,
            },
            request: RequestTemplate {
                method: hyper::Method::POST,
                path: "/api/clicks".into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: bytes::Bytes::from(body.to_string()),
            },
            limits: Limits {
                timeout: Duration::from_secs(3),
                max_in_flight: 77,
                connections: None,
                max_connections: Some(5),
                io: loadgen_engine::io::IoMode::Auto,
            },
            shard: None,
            start_at: None,
        }
    }

    #[test]
    fn every_setting_of_the_spec_reaches_the_shard_exactly() {
        let s = spec("@literal {seq}", Arrival::Poisson { seed: 9 });
        let a = attack_args(&s, Shard::new(1, 3).ok(), None).unwrap();
        let after = |flag: &str| a[a.iter().position(|x| x == flag).unwrap() + 1].as_str();
        assert_eq!(a[1], "http://127.0.0.1:9/api/clicks");
        assert_eq!(after("--rate"), "30.5");
        assert_eq!(after("--ramp-from"), "10");
        assert_eq!(after("--duration"), "1500000000ns");
        assert_eq!(after("--timeout"), "3000000000ns");
        assert_eq!(after("--seed"), "9");
        assert_eq!(after("--header"), "content-type: application/json");
        // `@…` would name a file: the shard gets the literal body back through `@@`.
        assert_eq!(after("--body"), "@@literal {seq}");
        assert_eq!(after("--max-in-flight"), "77");
        assert_eq!(after("--max-connections"), "5");
        assert_eq!(after("--shard"), "1/3");
        assert!(!a.contains(&"--start-at".to_string()));
        // Every endpoint, in order, and the balance; the URL still names the Host.
        let endpoints: Vec<&str> = a
            .iter()
            .enumerate()
            .filter(|(_, x)| *x == "--endpoint")
            .map(|(i, _)| a[i + 1].as_str())
            .collect();
        assert_eq!(endpoints, ["http://127.0.0.1:10", "http://127.0.0.1:11"]);
        assert_eq!(after("--balance"), "connection");
        let one = AttackSpec {
            endpoints: Vec::new(),
            ..s.clone()
        };
        let a = attack_args(&one, None, None).unwrap();
        assert!(!a.contains(&"--endpoint".to_string()) && !a.contains(&"--balance".to_string()));
        let binary = AttackSpec {
            request: RequestTemplate {
                body: bytes::Bytes::from_static(&[0xff, 0xfe]),
                ..s.request.clone()
            },
            ..s
        };
        assert_eq!(attack_args(&binary, None, None), Err(ArgsError::BinaryBody));
    }

    #[test]
    fn tls_settings_reach_the_shard_and_a_plain_spec_has_none() {
        let plain = attack_args(&spec("", Arrival::Uniform), None, None).unwrap();
        assert!(!plain
            .iter()
            .any(|x| x.starts_with("--cacert") || x.starts_with("--tls")));
        let s = AttackSpec {
            url: "https://localhost:9".into(),
            http2: Some(loadgen_engine::Http2 { max_streams: 7 }),
            tls: TlsSpec {
                cacert: Some("ca.pem".into()),
                insecure: false,
                cert: Some("c.pem".into()),
                key: Some("k.pem".into()),
                resume: false,
            },
            ..spec("", Arrival::Uniform)
        };
        let a = attack_args(&s, None, None).unwrap();
        let after = |flag: &str| a[a.iter().position(|x| x == flag).unwrap() + 1].as_str();
        assert_eq!(a[1], "https://localhost:9/api/clicks");
        assert_eq!(
            (
                after("--cacert"),
                after("--cert"),
                after("--key"),
                after("--tls-resume")
            ),
            ("ca.pem", "c.pem", "k.pem", "off")
        );
        assert!(a.contains(&"--http2".to_string()));
        assert_eq!(after("--max-streams"), "7");
    }
}
