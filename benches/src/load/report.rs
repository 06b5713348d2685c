//! Figures, percentiles, summaries over runs, and the two outputs: JSON and a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The `q`-quantile (0..=1) of `samples` (sorted in place), nearest-rank; `None` when empty.
pub fn quantile(samples: &mut [u64], q: f64) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    Some(samples[rank - 1])
}

/// p50/p99/p99.9 of nanosecond samples, in milliseconds, into `run` under `prefix`.
pub fn latency_figures(run: &mut Run, prefix: &str, samples: &mut [u64], with_p999: bool) {
    run.set(format!("{prefix}_samples"), samples.len() as f64);
    let qs: &[(&str, f64)] = if with_p999 {
        &[("p50", 0.5), ("p99", 0.99), ("p999", 0.999)]
    } else {
        &[("p50", 0.5), ("p99", 0.99)]
    };
    for (name, q) in qs {
        if let Some(v) = quantile(samples, *q) {
            run.set(format!("{prefix}_{name}_ms"), v as f64 / 1e6);
        }
    }
}

/// The figures of one run: name → value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Run(pub BTreeMap<String, f64>);

impl Run {
    pub fn set(&mut self, name: impl Into<String>, v: f64) {
        self.0.insert(name.into(), v);
    }
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }
}

/// Median, min and max of one figure over the runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

/// Summarises every figure present in any run (the median of an even count is the mean of
/// the two middle values).
pub fn summarise(runs: &[Run]) -> BTreeMap<String, Summary> {
    let mut by_name: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in runs {
        for (k, v) in &r.0 {
            by_name.entry(k.clone()).or_default().push(*v);
        }
    }
    by_name
        .into_iter()
        .map(|(k, mut vs)| {
            vs.sort_by(|a, b| a.total_cmp(b));
            let n = vs.len();
            let median = if n % 2 == 1 {
                vs[n / 2]
            } else {
                (vs[n / 2 - 1] + vs[n / 2]) / 2.0
            };
            (
                k,
                Summary {
                    median,
                    min: vs[0],
                    max: vs[n - 1],
                    runs: n,
                },
            )
        })
        .collect()
}

/// A target a figure is compared with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Target {
    pub figure: String,
    /// `<=` or `>=`.
    pub op: String,
    pub value: f64,
    /// Whether the median meets it.
    pub met: Option<bool>,
}

/// Everything one scenario produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    /// The parameters it ran with.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Each run's figures (a run may hold figures of both servers, `chatico_*` and `raw_*`).
    pub runs: Vec<Run>,
    pub summary: BTreeMap<String, Summary>,
    pub targets: Vec<Target>,
    /// Notes: what was measured how, and anything that went wrong.
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_owned(),
            params: BTreeMap::new(),
            runs: Vec::new(),
            summary: BTreeMap::new(),
            targets: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn param(&mut self, k: &str, v: impl Serialize) {
        self.params
            .insert(k.to_owned(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null));
    }

    pub fn target(&mut self, figure: &str, op: &'static str, value: f64) {
        self.targets.push(Target {
            figure: figure.to_owned(),
            op: op.to_owned(),
            value,
            met: None,
        });
    }

    /// Computes the summary and checks the targets against the medians.
    pub fn finish(&mut self) {
        self.summary = summarise(&self.runs);
        for t in &mut self.targets {
            t.met = self.summary.get(&t.figure).map(|s| match t.op.as_str() {
                "<=" => s.median <= t.value,
                _ => s.median >= t.value,
            });
        }
    }

    /// One report from several of the same scenario (e.g. idle runs, each against a freshly
    /// started server): their runs together, the first one's parameters and targets.
    pub fn merge(reports: Vec<Report>) -> Option<Report> {
        let mut it = reports.into_iter();
        let mut first = it.next()?;
        for r in it {
            if r.scenario != first.scenario {
                first
                    .notes
                    .push(format!("merged a `{}` report into `{}`", r.scenario, first.scenario));
            }
            first.runs.extend(r.runs);
            for n in r.notes {
                if !first.notes.contains(&n) {
                    first.notes.push(n);
                }
            }
        }
        first.finish();
        Some(first)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A readable table: one row per figure (median, min–max over the runs, target).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {} ==", self.scenario);
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "params: {}", params.join(" "));
        let w = self.summary.keys().map(String::len).max().unwrap_or(6).max(6);
        let _ = writeln!(
            out,
            "{:<w$}  {:>14}  {:>14}  {:>14}  {:>4}  target",
            "figure", "median", "min", "max", "runs"
        );
        for (k, s) in &self.summary {
            let target = self
                .targets
                .iter()
                .find(|t| &t.figure == k)
                .map(|t| {
                    let verdict = match t.met {
                        Some(true) => "met",
                        Some(false) => "MISSED",
                        None => "?",
                    };
                    format!("{} {} ({verdict})", t.op, fmt_num(t.value))
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{k:<w$}  {:>14}  {:>14}  {:>14}  {:>4}  {target}",
                fmt_num(s.median),
                fmt_num(s.min),
                fmt_num(s.max),
                s.runs
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), Some(500));
        assert_eq!(quantile(&mut v, 0.99), Some(990));
        assert_eq!(quantile(&mut v, 0.999), Some(999));
        assert_eq!(quantile(&mut v, 1.0), Some(1000));
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [7], 0.999), Some(7));
    }

    #[test]
    fn summaries_take_median_min_max_and_targets_use_the_median() {
        let runs: Vec<Run> = [3.0, 1.0, 2.0, 10.0]
            .iter()
            .map(|v| {
                let mut r = Run::default();
                r.set("x", *v);
                r
            })
            .collect();
        let mut rep = Report::new("t");
        rep.runs = runs;
        rep.target("x", ">=", 2.4);
        rep.target("y", "<=", 1.0);
        rep.finish();
        let s = rep.summary["x"];
        assert_eq!((s.median, s.min, s.max, s.runs), (2.5, 1.0, 10.0, 4));
        assert_eq!(rep.targets[0].met, Some(true));
        assert_eq!(rep.targets[1].met, None);
        let table = rep.table();
        assert!(table.contains(">= 2.400 (met)"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&rep.to_json()).expect("json");
        assert_eq!(json["summary"]["x"]["median"], 2.5);
        let back: Report = serde_json::from_str(&rep.to_json()).expect("report");
        let merged = Report::merge(vec![back.clone(), back]).expect("merged");
        assert_eq!(merged.runs.len(), 8);
        assert_eq!(merged.summary["x"].runs, 8);
        assert_eq!(merged.summary["x"].median, 2.5);
    }
}
