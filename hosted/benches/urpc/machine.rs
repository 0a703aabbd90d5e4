//! The machine a benchmark ran on, for its JSON file: what `lscpu` and
//! `uname` say, and how Linux places the two CPUs the benchmark used.

use std::fs;
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::CpuPair;

fn command_output(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        Err(error) => format!("cannot run {program}: {error}"),
    }
}

fn topology(cpu: usize, field: &str) -> String {
    let path = format!("/sys/devices/system/cpu/cpu{cpu}/topology/{field}");
    fs::read_to_string(&path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|error| format!("{path}: {error}"))
}

pub fn describe(cpus: CpuPair) -> Value {
    let placement = |cpu| {
        json!({
            "cpu": cpu,
            "package": topology(cpu, "physical_package_id"),
            "core": topology(cpu, "core_id"),
            "thread_siblings": topology(cpu, "thread_siblings_list"),
        })
    };
    let same_core = topology(cpus.initiator, "core_id") == topology(cpus.responder, "core_id")
        && topology(cpus.initiator, "physical_package_id")
            == topology(cpus.responder, "physical_package_id");
    json!({
        "lscpu": command_output("lscpu", &[]),
        "uname": command_output("uname", &["-srm"]),
        "cpus": [placement(cpus.initiator), placement(cpus.responder)],
        "pair_as_linux_sees_it": if same_core { "two hardware threads of one core" } else { "two separate cores" },
    })
}
