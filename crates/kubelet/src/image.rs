//! Images as the stand-in knows them: no registry, no layers, no pulls. An image *name* maps to
//! a program on this machine (`--image polymetrie=/path/to/polymetrie`), and a container runs
//! that program with the container's arguments. Anything else fails the pod with a reason that
//! says so, instead of running something the manifest did not ask for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

/// The local program table.
#[derive(Debug, Clone, Default)]
pub struct Images {
    programs: BTreeMap<String, PathBuf>,
}

/// What a container runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Executable {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// `ghcr.io/acme/polymetrie:1.2@sha256:…` → `polymetrie`: the last path component, without tag
/// or digest (the registry and tag do not change which local program stands in).
pub fn short_name(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

fn base(p: &Path) -> Option<&str> {
    p.file_name().and_then(|n| n.to_str())
}

impl Images {
    pub fn new(pairs: &[(String, PathBuf)]) -> Images {
        Images {
            programs: pairs.iter().cloned().collect(),
        }
    }

    /// The program and arguments of `c`. A `command` must name the image's own program (by
    /// path or bare name): the stand-in has no image file system to find another one in.
    pub fn resolve(&self, c: &Container) -> Result<Executable, String> {
        let image = c.image.as_deref().unwrap_or("");
        let name = short_name(image);
        let program = self.programs.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.programs.keys().map(String::as_str).collect();
            format!(
                "image {image:?} has no local program in the testbed's kubelet stand-in \
                 (it runs only: {})",
                known.join(", ")
            )
        })?;
        let mut args = Vec::new();
        if let Some(command) = c.command.as_ref().filter(|c| !c.is_empty()) {
            let first = Path::new(&command[0]);
            if base(first) != base(program) {
                return Err(format!(
                    "command {:?} is not image {image:?}'s program {:?} (the stand-in runs no \
                     other program from an image)",
                    command[0],
                    program.display()
                ));
            }
            args.extend(command[1..].iter().cloned());
        }
        args.extend(c.args.iter().flatten().cloned());
        Ok(Executable {
            program: program.clone(),
            args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, command: Option<&[&str]>, args: &[&str]) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            command: command.map(|c| c.iter().map(|s| s.to_string()).collect()),
            args: Some(args.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn names_lose_registry_tag_and_digest() {
        assert_eq!(short_name("polymetrie"), "polymetrie");
        assert_eq!(short_name("ghcr.io/acme/polymetrie:1.2"), "polymetrie");
        assert_eq!(short_name("localhost:5000/redis:7@sha256:ab"), "redis");
    }

    #[test]
    fn command_must_be_the_images_program() {
        let images = Images::new(&[("redis".into(), "/usr/bin/redis-server".into())]);
        let ok = images
            .resolve(&container(
                "redis:7",
                Some(&["redis-server"]),
                &["--save", ""],
            ))
            .unwrap();
        assert_eq!(ok.program, PathBuf::from("/usr/bin/redis-server"));
        assert_eq!(ok.args, vec!["--save", ""]);
        let err = images
            .resolve(&container("redis", Some(&["/bin/sh", "-c"]), &[]))
            .unwrap_err();
        assert!(err.contains("is not image"), "{err}");
        let err = images.resolve(&container("nginx", None, &[])).unwrap_err();
        assert!(
            err.contains("\"nginx\" has no local program") && err.contains("redis"),
            "{err}"
        );
    }
}
