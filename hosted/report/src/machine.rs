//! The machine a benchmark ran on, for its JSON file: what `lscpu` and
//! `uname` say, and how Linux places the CPUs the benchmark used.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use serde_json::{Value, json};

fn command_output(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        Err(error) => format!("cannot run {program}: {error}"),
    }
}

/// A field of `/sys/devices/system/cpu/cpu<cpu>/`, or the error in its place.
fn sysfs(cpu: usize, field: &str) -> String {
    let path = format!("/sys/devices/system/cpu/cpu{cpu}/{field}");
    fs::read_to_string(&path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|error| format!("{path}: {error}"))
}

/// `lscpu`, `uname`, and for each of `cpus` its package, core, hardware
/// thread siblings and the CPUs it shares its last-level cache with (a cache
/// domain, in which `docs/architecture.md` §2.4 lets cores share a replica).
pub fn describe(cpus: &[usize]) -> Value {
    let placement = |&cpu: &usize| {
        json!({
            "cpu": cpu,
            "package": sysfs(cpu, "topology/physical_package_id"),
            "core": sysfs(cpu, "topology/core_id"),
            "thread_siblings": sysfs(cpu, "topology/thread_siblings_list"),
            "l3_shared_with": sysfs(cpu, "cache/index3/shared_cpu_list"),
        })
    };
    let cores: BTreeSet<(String, String)> = cpus
        .iter()
        .map(|&cpu| {
            (
                sysfs(cpu, "topology/physical_package_id"),
                sysfs(cpu, "topology/core_id"),
            )
        })
        .collect();
    let cores = match (cpus.len(), cores.len()) {
        (2, 1) => "two hardware threads of one core".to_owned(),
        (2, 2) => "two separate cores".to_owned(),
        (cpus, cores) => format!("{cpus} CPUs on {cores} cores"),
    };
    json!({
        "lscpu": command_output("lscpu", &[]),
        "uname": command_output("uname", &["-srm"]),
        "cpus": cpus.iter().map(placement).collect::<Vec<_>>(),
        "cpus_as_linux_sees_them": cores,
    })
}
