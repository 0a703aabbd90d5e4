//! Checks that the host has what building and booting Atoll need: the rust
//! target for the kernel, QEMU, and the GRUB and firmware pieces for the ISO.
//! Missing Debian packages are installed when running as root; otherwise the
//! exact command to install them is printed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::qemu::Ovmf;
use crate::workspace::{KERNEL_TARGET, Workspace, run};

#[derive(Clone, Copy, PartialEq)]
pub enum Need {
    /// `run` and `trace`: only QEMU.
    Qemu,
    /// `gdb`: QEMU and gdb.
    Gdb,
    /// `iso`: QEMU, GRUB for BIOS and UEFI, and OVMF.
    Iso,
    /// `test`: all of them, and ACPICA's tools for the host tests.
    Everything,
}

enum Probe {
    Tool(&'static str),
    Dir(&'static str),
    Ovmf,
}

struct Requirement {
    probe: Probe,
    /// The Debian package that provides it.
    package: &'static str,
    need: Need,
}

const REQUIREMENTS: [Requirement; 10] = [
    Requirement {
        probe: Probe::Tool("qemu-system-x86_64"),
        package: "qemu-system-x86",
        need: Need::Qemu,
    },
    Requirement {
        probe: Probe::Tool("gdb"),
        package: "gdb",
        need: Need::Gdb,
    },
    Requirement {
        probe: Probe::Tool("grub-mkrescue"),
        package: "grub-common",
        need: Need::Iso,
    },
    Requirement {
        probe: Probe::Tool("xorriso"),
        package: "xorriso",
        need: Need::Iso,
    },
    Requirement {
        probe: Probe::Tool("mformat"),
        package: "mtools",
        need: Need::Iso,
    },
    Requirement {
        probe: Probe::Dir("/usr/lib/grub/i386-pc"),
        package: "grub-pc-bin",
        need: Need::Iso,
    },
    Requirement {
        probe: Probe::Dir("/usr/lib/grub/x86_64-efi"),
        package: "grub-efi-amd64-bin",
        need: Need::Iso,
    },
    Requirement {
        probe: Probe::Ovmf,
        package: "ovmf",
        need: Need::Iso,
    },
    // ACPICA's compiler and interpreter: the firmware crate's host tests
    // compile ASL and check Atoll's `\_S5` against ACPICA's.
    Requirement {
        probe: Probe::Tool("iasl"),
        package: "acpica-tools",
        need: Need::Everything,
    },
    Requirement {
        probe: Probe::Tool("acpiexec"),
        package: "acpica-tools",
        need: Need::Everything,
    },
];

impl Requirement {
    fn applies_to(&self, need: Need) -> bool {
        self.need == Need::Qemu || need == Need::Everything || self.need == need
    }

    fn is_present(&self) -> bool {
        match self.probe {
            Probe::Tool(name) => on_path(name),
            Probe::Dir(dir) => Path::new(dir).is_dir(),
            Probe::Ovmf => Ovmf::find().is_some(),
        }
    }

    fn describe(&self) -> &'static str {
        match self.probe {
            Probe::Tool(name) | Probe::Dir(name) => name,
            Probe::Ovmf => "OVMF UEFI firmware",
        }
    }
}

pub fn ensure(workspace: &Workspace, need: Need) -> Result<()> {
    ensure_kernel_target(workspace)?;
    let missing = missing_requirements(need);
    if missing.is_empty() {
        return Ok(());
    }
    let packages = packages_of(&missing);
    let what = describe(&missing);
    if !running_as_root()? {
        bail!(
            "missing {what}; install with:\n    sudo apt-get install -y {}",
            packages.join(" ")
        );
    }
    eprintln!("xtask: missing {what}; installing {}", packages.join(" "));
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    let still_missing = missing_requirements(need);
    ensure!(
        still_missing.is_empty(),
        "still missing after apt-get install: {}",
        describe(&still_missing)
    );
    Ok(())
}

fn missing_requirements(need: Need) -> Vec<&'static Requirement> {
    REQUIREMENTS
        .iter()
        .filter(|requirement| requirement.applies_to(need) && !requirement.is_present())
        .collect()
}

fn describe(requirements: &[&Requirement]) -> String {
    let names: Vec<&str> = requirements.iter().map(|r| r.describe()).collect();
    names.join(", ")
}

/// Each package once, in the order of `REQUIREMENTS`.
fn packages_of(missing: &[&Requirement]) -> Vec<&'static str> {
    let mut packages: Vec<&str> = Vec::new();
    for requirement in missing {
        if !packages.contains(&requirement.package) {
            packages.push(requirement.package);
        }
    }
    packages
}

/// Adds the kernel's rust target when the toolchain lacks it. Runs in the
/// workspace root so that rustup picks the toolchain pinned there.
fn ensure_kernel_target(workspace: &Workspace) -> Result<()> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .current_dir(&workspace.root)
        .output()
        .context("cannot run rustc")?;
    ensure!(output.status.success(), "`rustc --print sysroot` failed");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if sysroot.join("lib/rustlib").join(KERNEL_TARGET).is_dir() {
        return Ok(());
    }
    eprintln!("xtask: adding the rust target {KERNEL_TARGET}");
    run(Command::new("rustup")
        .args(["target", "add", KERNEL_TARGET])
        .current_dir(&workspace.root))
    .with_context(|| {
        format!(
            "the toolchain at {} lacks {KERNEL_TARGET}",
            sysroot.display()
        )
    })
}

fn running_as_root() -> Result<bool> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .context("cannot run `id -u`")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn on_path(tool: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_needs_only_qemu() {
        let for_run: Vec<&str> = REQUIREMENTS
            .iter()
            .filter(|r| r.applies_to(Need::Qemu))
            .map(|r| r.package)
            .collect();
        assert_eq!(for_run, ["qemu-system-x86"]);
        let for_gdb: Vec<&str> = REQUIREMENTS
            .iter()
            .filter(|r| r.applies_to(Need::Gdb))
            .map(|r| r.package)
            .collect();
        assert_eq!(for_gdb, ["qemu-system-x86", "gdb"]);
        let for_iso: Vec<&str> = REQUIREMENTS
            .iter()
            .filter(|r| r.applies_to(Need::Iso))
            .map(|r| r.package)
            .collect();
        assert!(
            !for_iso.contains(&"gdb")
                && !for_iso.contains(&"acpica-tools")
                && for_iso.contains(&"ovmf"),
            "{for_iso:?}"
        );
        assert!(REQUIREMENTS.iter().all(|r| r.applies_to(Need::Everything)));
    }

    #[test]
    fn lists_each_package_once() {
        let [qemu, _gdb, grub_mkrescue, ..] = &REQUIREMENTS;
        let missing = [qemu, grub_mkrescue, qemu];
        assert_eq!(packages_of(&missing), ["qemu-system-x86", "grub-common"]);
        assert_eq!(
            describe(&missing),
            "qemu-system-x86_64, grub-mkrescue, qemu-system-x86_64"
        );
    }

    #[test]
    fn finds_tools_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("no-such-tool-for-atoll"));
    }
}
