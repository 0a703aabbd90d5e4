//! Where the workspace and its build outputs are, and the cargo builds that
//! xtask drives.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};

/// The kernel is built for this target only; the host crates never are.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// The file beside the kernel's ELF that holds the programs, as one tar
/// archive: QEMU's `-initrd`, GRUB's `module2` ([`programs_beside`]).
const PROGRAMS_FILE: &str = "atoll-programs.tar";
/// The user programs' packages: each directory of `user/` but the library.
const USER_LIBRARY: &str = "libatoll";

/// The programs' archive that goes with the kernel at `elf`.
pub fn programs_beside(elf: &Path) -> PathBuf {
    elf.with_file_name(PROGRAMS_FILE)
}

pub struct Workspace {
    pub root: PathBuf,
    /// Cargo's target directory: `CARGO_TARGET_DIR` when set, as cargo itself
    /// decides, else `target/` at the root.
    pub target_dir: PathBuf,
}

impl Workspace {
    pub fn locate() -> Result<Workspace> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        let target_dir = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => env::current_dir()
                .context("cannot read the current directory")?
                .join(dir),
            None => root.join("target"),
        };
        Ok(Workspace { root, target_dir })
    }

    /// `cargo` run from the workspace root, so that rust-toolchain.toml and
    /// .cargo/config.toml apply. `CARGO` is the cargo that started xtask.
    pub fn cargo(&self) -> Command {
        let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo.current_dir(&self.root);
        cargo
    }

    /// Builds the kernel and the programs, packs the programs beside the
    /// kernel ([`programs_beside`]), and returns the path of the kernel's
    /// ELF file.
    pub fn build_kernel(&self) -> Result<PathBuf> {
        let elf = self.build_kernel_alone()?;
        self.build_programs(&programs_beside(&elf))?;
        Ok(elf)
    }

    /// The programs under `user/`, by package name, in name order.
    fn programs(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.root.join("user")).context("cannot list user/")? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().join("Cargo.toml").is_file() && name != USER_LIBRARY {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Builds every program under `user/` (linked at the user address range
    /// by its build script, with the large code model, since that range is
    /// past 2 GiB) and packs them into a tar archive at `archive`, each
    /// under its package's name.
    fn build_programs(&self, archive: &Path) -> Result<()> {
        let programs = self.programs()?;
        let target_dir = self.target_dir.join("user");
        let mut build = self.cargo();
        build
            .args([
                "build",
                "--release",
                "--target",
                KERNEL_TARGET,
                "--target-dir",
            ])
            .arg(&target_dir)
            .env(
                "CARGO_TARGET_X86_64_UNKNOWN_NONE_RUSTFLAGS",
                "-C relocation-model=static -C code-model=large -C strip=debuginfo",
            );
        for program in &programs {
            build.args(["--package", program]);
        }
        let status = build.status().context("cannot run cargo")?;
        ensure!(status.success(), "building the programs failed ({status})");
        let mut packer = tar::Builder::new(Vec::new());
        for program in &programs {
            let elf = target_dir.join(KERNEL_TARGET).join("release").join(program);
            let bytes = std::fs::read(&elf)
                .with_context(|| format!("cannot read the program {}", elf.display()))?;
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            packer
                .append_data(&mut header, program, bytes.as_slice())
                .with_context(|| format!("cannot pack {program}"))?;
        }
        let bytes = packer.into_inner().context("cannot finish the archive")?;
        std::fs::write(archive, bytes)
            .with_context(|| format!("cannot write {}", archive.display()))
    }

    /// Builds the kernel alone and returns the path of its ELF file.
    fn build_kernel_alone(&self) -> Result<PathBuf> {
        let status = self
            .cargo()
            .args([
                "build",
                "--package",
                "atoll-kernel",
                "--target",
                KERNEL_TARGET,
                "--release",
            ])
            .status()
            .context("cannot run cargo")?;
        ensure!(status.success(), "building the kernel failed ({status})");
        let elf = self
            .target_dir
            .join(KERNEL_TARGET)
            .join("release")
            .join("atoll-kernel");
        ensure!(
            elf.is_file(),
            "the kernel build produced no {}",
            elf.display()
        );
        Ok(elf)
    }

    /// Runs the unit tests of the default members: every host crate, and
    /// not the kernel, which `--workspace` would pull in.
    pub fn run_host_tests(&self) -> Result<()> {
        let status = self
            .cargo()
            .arg("test")
            .status()
            .context("cannot run cargo")?;
        ensure!(status.success(), "host unit tests failed ({status})");
        Ok(())
    }
}

/// Runs `command`, its output on this terminal, after printing it as
/// `xtask: <command>`; fails unless it succeeds.
pub fn run(command: &mut Command) -> Result<()> {
    let shown = shown(command);
    println!("xtask: {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    ensure!(status.success(), "{shown} failed ({status})");
    Ok(())
}

/// `command` as a person would type it: the environment it sets, the
/// program, the arguments (not the directory it runs in).
pub fn shown(command: &Command) -> String {
    let mut words: Vec<String> = command
        .get_envs()
        .filter_map(|(name, value)| {
            let value = value?.to_string_lossy();
            let value = if value.contains(' ') {
                format!("\"{value}\"")
            } else {
                value.into_owned()
            };
            Some(format!("{}={value}", name.to_string_lossy()))
        })
        .collect();
    words.push(command.get_program().to_string_lossy().into_owned());
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    words.join(" ")
}
