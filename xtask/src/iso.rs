//! The GRUB rescue ISO: one image that boots Atoll through multiboot2 under
//! both BIOS and UEFI, which is the way onto real hardware.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};

use crate::protocol;
use crate::workspace::Workspace;

/// Builds `out` from the kernel ELF; with `exec`, the kernel runs that
/// script instead of the interactive shell.
pub fn build(workspace: &Workspace, kernel: &Path, exec: Option<&str>, out: &Path) -> Result<()> {
    let file_name = out
        .file_name()
        .with_context(|| format!("{} is not a file path", out.display()))?;
    // One staging tree per output, so that building two ISOs at once is safe.
    let root = workspace.target_dir.join("iso-root").join(file_name);
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("cannot clear {}", root.display()))?;
    }
    let grub_dir = root.join("boot/grub");
    fs::create_dir_all(&grub_dir)
        .with_context(|| format!("cannot create {}", grub_dir.display()))?;
    fs::copy(kernel, root.join("boot/atoll.elf"))
        .with_context(|| format!("cannot copy {}", kernel.display()))?;
    let programs = crate::workspace::programs_beside(kernel);
    fs::copy(&programs, root.join("boot/programs.tar"))
        .with_context(|| format!("cannot copy {}", programs.display()))?;
    fs::write(grub_dir.join("grub.cfg"), grub_cfg(exec)).context("cannot write grub.cfg")?;
    if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // grub-mkrescue talks a lot through xorriso; show it only when it fails.
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(out)
        .arg(&root)
        .output()
        .context("cannot run grub-mkrescue")?;
    ensure!(
        output.status.success(),
        "grub-mkrescue failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn grub_cfg(exec: Option<&str>) -> String {
    let cmdline = exec
        .map(|script| format!(" {}", grub_quote(&protocol::exec_cmdline(script))))
        .unwrap_or_default();
    format!(
        "set timeout=0\n\
         set default=0\n\
         menuentry \"Atoll\" {{\n\
         \x20   multiboot2 /boot/atoll.elf{cmdline}\n\
         \x20   module2 /boot/programs.tar\n\
         \x20   boot\n\
         }}\n"
    )
}

/// One word for GRUB's script parser, which would otherwise end the command
/// at `;` and drop other special characters. Inside single quotes nothing
/// is special, so only a single quote itself needs the `'\''` dance.
fn grub_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_without_a_script_boots_the_shell() {
        assert_eq!(
            grub_cfg(None),
            "set timeout=0\nset default=0\nmenuentry \"Atoll\" {\n    multiboot2 /boot/atoll.elf\n    module2 /boot/programs.tar\n    boot\n}\n"
        );
    }

    #[test]
    fn grub_cfg_quotes_the_script_as_one_argument() {
        let cfg = grub_cfg(Some("cores; ipi 1"));
        assert!(
            cfg.contains("    multiboot2 /boot/atoll.elf 'atoll.exec=cores; ipi 1'\n"),
            "{cfg}"
        );
    }

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(grub_quote("say 'hi' $x"), r"'say '\''hi'\'' $x'");
    }
}
