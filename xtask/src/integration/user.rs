//! QEMU tests of user space: the programs under `user/` travel in the boot
//! image (QEMU's `-initrd` here; the ISO tests check GRUB's `module2`), and
//! the kernel finds, reads and checks them.

use super::cases::{expect_line, expect_success};
use super::{QemuTest, TestContext};
use crate::protocol;

pub fn tests() -> Vec<QemuTest> {
    vec![QemuTest::new(
        "the_programs_in_the_boot_image_are_listed_and_checked",
        programs_are_listed_and_checked,
    )]
}

/// The boot names the programs, and `programs` shows each one's image as
/// the loader checked it: `hello`'s entry point in the user range, its code
/// read and execute, its constants read only.
fn programs_are_listed_and_checked(context: &mut TestContext) -> Result<(), String> {
    let script = "programs";
    let run = context.exec(2, script)?;
    expect_success(&run, script)?;
    expect_line(&run.serial, "atoll: programs: hello")?;
    expect_line(&run.serial, "programs: 1 in the boot image")?;
    let hello = protocol::lines(&run.serial)
        .find_map(|line| line.strip_prefix("  hello: "))
        .ok_or("no `hello` line")?;
    let entry = hello
        .split_once(", entry ")
        .and_then(|(_, rest)| rest.split_once(','))
        .and_then(|(entry, _)| u64::from_str_radix(entry.trim_start_matches("0x"), 16).ok())
        .ok_or(format!("no entry point in `{hello}`"))?;
    if !(atoll_abi::USER_START..atoll_abi::USER_END).contains(&entry) {
        return Err(format!(
            "hello's entry {entry:#x} is outside the user range"
        ));
    }
    if !(hello.contains(" r-x") && hello.contains(" r--") && !hello.contains("cannot")) {
        return Err(format!(
            "hello's segments are not code and constants: {hello}"
        ));
    }
    Ok(())
}
