//! `GET /1.0/metrics`: every running instance's CPU, memory, network and process figures in
//! Prometheus's text format, under Incus's metric names (`incus_*`), so dashboards made for
//! Incus read warrend as they are.

use crate::db::Instance;
use serde_json::Value;
use std::fmt::Write;

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text for `instances` whose state (`state_json`) is given beside each.
pub fn render(states: &[(Instance, Value)]) -> String {
    let mut cpu = Family::new(
        "incus_cpu_seconds_total",
        "counter",
        "The total number of CPU time used in seconds.",
    );
    let mut mem_total = Family::new(
        "incus_memory_MemTotal_bytes",
        "gauge",
        "The amount of memory the instance may use (its limit, or the host's memory).",
    );
    let mut mem_free = Family::new(
        "incus_memory_MemFree_bytes",
        "gauge",
        "The amount of memory the instance could still use.",
    );
    let mut mem_used = Family::new(
        "incus_memory_MemUsed_bytes",
        "gauge",
        "The amount of memory the instance uses.",
    );
    let mut swap = Family::new(
        "incus_memory_Swap_bytes",
        "gauge",
        "The amount of swap the instance uses.",
    );
    let mut rx = Family::new(
        "incus_network_receive_bytes_total",
        "counter",
        "The amount of received bytes on a given interface.",
    );
    let mut tx = Family::new(
        "incus_network_transmit_bytes_total",
        "counter",
        "The amount of transmitted bytes on a given interface.",
    );
    let mut rxp = Family::new(
        "incus_network_receive_packets_total",
        "counter",
        "The amount of received packets on a given interface.",
    );
    let mut txp = Family::new(
        "incus_network_transmit_packets_total",
        "counter",
        "The amount of transmitted packets on a given interface.",
    );
    let mut procs = Family::new(
        "incus_procs_total",
        "gauge",
        "The number of running processes.",
    );
    for (inst, st) in states {
        if st["status"] != "Running" {
            continue;
        }
        let labels = format!(
            "name=\"{}\",project=\"{}\",type=\"container\"",
            escape(inst.api_name()),
            escape(&inst.project)
        );
        let n = |v: &Value| v.as_f64().unwrap_or(0.0);
        cpu.samples
            .push((labels.clone(), n(&st["cpu"]["usage"]) / 1e9));
        let (total, used) = (n(&st["memory"]["total"]), n(&st["memory"]["usage"]));
        mem_total.samples.push((labels.clone(), total));
        mem_used.samples.push((labels.clone(), used));
        mem_free
            .samples
            .push((labels.clone(), (total - used).max(0.0)));
        swap.samples
            .push((labels.clone(), n(&st["memory"]["swap_usage"])));
        procs.samples.push((labels.clone(), n(&st["processes"])));
        for (dev, net) in st["network"].as_object().into_iter().flatten() {
            let l = format!("device=\"{}\",{labels}", escape(dev));
            let c = &net["counters"];
            rx.samples.push((l.clone(), n(&c["bytes_received"])));
            tx.samples.push((l.clone(), n(&c["bytes_sent"])));
            rxp.samples.push((l.clone(), n(&c["packets_received"])));
            txp.samples.push((l, n(&c["packets_sent"])));
        }
    }
    let mut out = String::new();
    for f in [
        cpu, mem_total, mem_free, mem_used, swap, rx, tx, rxp, txp, procs,
    ] {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (labels, v) in f.samples {
            let _ = writeln!(out, "{}{{{labels}}} {v}", f.name);
        }
    }
    out
}
