//! The I/O backend chosen at start: a child `loadgen attack` whose io_uring is refused by a
//! seccomp filter (installed in the child only, between fork and exec — never the machine's
//! `kernel.io_uring_disabled`) runs on epoll under `--io auto` and says why, and refuses to run
//! under `--io uring`; unrefused, `auto` takes io_uring where the kernel has it.

// Installing a seccomp filter in the child needs `pre_exec` (unsafe: it runs between fork and
// exec) and raw `prctl`/`seccomp` calls; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::{Output, Stdio};

use crate::common;
use crate::common::server::{answer, serve};

/// `AUDIT_ARCH_*` of this build's architecture (the filter allows every other architecture's
/// calls, as their numbers differ).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// A classic BPF seccomp program: `io_uring_setup` fails with `EPERM`, everything else runs.
fn refuse_io_uring() -> Vec<libc::sock_filter> {
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    vec![
        // seccomp_data.arch is at offset 4, .nr at 0.
        stmt(load, 4),
        jeq(AUDIT_ARCH, 0, 3),
        stmt(load, 0),
        jeq(libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ]
}

/// `loadgen attack URL … --io IO --json`, with io_uring refused to it when `refused`.
fn attack(url: &str, io: &str, refused: bool) -> Output {
    attack_with(url, io, refused, &["--json"])
}

fn attack_with(url: &str, io: &str, refused: bool, extra: &[&str]) -> Output {
    let mut c = common::command::loadgen();
    c.args(["attack", url, "--rate", "100", "--duration", "1s"])
        .args(extra)
        .args(["--io", io])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if refused {
        let mut filter = refuse_io_uring();
        // SAFETY: the closure runs in the forked child before exec and makes two system calls
        // and no allocation (async-signal-safe); `prog` points into `filter`, which the
        // closure owns, so it lives as long as the call that reads it.
        unsafe {
            c.pre_exec(move || {
                let prog = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_mut_ptr(),
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let on = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &raw const prog,
                );
                if on != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c.output().expect("run loadgen")
}

fn generator(out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a StepResult");
    assert_eq!(v["intended"], v["ok"], "{stderr}");
    v["generator"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_epoll_when_io_uring_is_refused_and_says_why() {
    let _serial = common::serial::lock().await;
    let (addr, _) = serve(|_req| async { answer(204) }).await;
    let url = format!("http://{addr}");
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || attack(&u, "auto", true))
        .await
        .unwrap();
    let g = generator(&out);
    assert_eq!(g["io_backend"], "epoll", "{g}");
    let why = g["io_fallback_reason"].as_str().expect("a reason");
    assert!(
        why.contains("io_uring_setup refused") && why.contains("not permitted"),
        "{why}"
    );

    // The summary says it too.
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || attack_with(&u, "auto", true, &[]))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("io: epoll (not io_uring: io_uring_setup refused"),
        "{stderr}"
    );

    // Asked for explicitly, a refused io_uring is a step that cannot run: exit 2, and why.
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || attack(&u, "uring", true))
        .await
        .unwrap();
    common::command::assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("io_uring"), "{stderr}");

    // Unrefused, auto takes io_uring on a kernel that has it (and says nothing of a fallback).
    if loadgen_engine::uring::Ring::new().is_ok() {
        let out = tokio::task::spawn_blocking(move || attack(&url, "auto", false))
            .await
            .unwrap();
        let g = generator(&out);
        assert_eq!(g["io_backend"], "uring", "{g}");
        assert!(g.get("io_fallback_reason").is_none(), "{g}");
    } else {
        eprintln!("!!! io_uring refused in this test process too: only the fallback tested !!!");
    }
}
