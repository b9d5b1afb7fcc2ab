//! The Prometheus text exposition format, version 0.0.4: what `GET /metrics` answers.
//!
//! One family at a time: `# HELP` and `# TYPE` lines, then its samples, one a line
//! (`name{label="value",...} value`). Label values and help texts are escaped as the format
//! asks; histograms are written as cumulative `_bucket` series with an `le` label ending in
//! `+Inf`, then `_sum` and `_count`.

use std::fmt::Write as _;

/// The `content-type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value: counts stay exact integers, the rest are floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// Writes one exposition; [`Encoder::finish`] gives the body.
#[derive(Debug, Default)]
pub struct Encoder {
    out: String,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Starts a family: its help text and type. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_label_value(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(&mut self.out, value.into());
        self.out.push('\n');
    }

    /// A family of one sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Into<Value>) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// One histogram's series (the family is started by the caller): `counts[i]` observations
    /// fell at or under `bounds[i]` and over the bound before it; `counts[bounds.len()]` fell
    /// above the last bound. Written cumulative, as the format wants.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        debug_assert_eq!(counts.len(), bounds.len() + 1);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, count) in counts.iter().enumerate() {
            cumulative = cumulative.saturating_add(*count);
            let le = match bounds.get(i) {
                Some(bound) => format_float(*bound),
                None => "+Inf".to_owned(),
            };
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_value(out: &mut String, value: Value) {
    match value {
        Value::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float(v) => out.push_str(&format_float(v)),
    }
}

/// Floats as Go's `strconv.ParseFloat` reads them: `+Inf`, `-Inf`, `NaN`, or decimal.
fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// In help texts: `\` and line feeds.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// In label values: `\`, `"` and line feeds.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_labels() {
        let mut e = Encoder::new();
        e.family("pds_things_total", Kind::Counter, "Things done.");
        e.sample(
            "pds_things_total",
            &[("method", "a.b.c"), ("status", "200")],
            3,
        );
        e.sample(
            "pds_things_total",
            &[("method", "x.y.z"), ("status", "404")],
            1,
        );
        e.single("pds_temperature", Kind::Gauge, "How warm.", -1.5);
        assert_eq!(
            e.finish(),
            "# HELP pds_things_total Things done.\n\
             # TYPE pds_things_total counter\n\
             pds_things_total{method=\"a.b.c\",status=\"200\"} 3\n\
             pds_things_total{method=\"x.y.z\",status=\"404\"} 1\n\
             # HELP pds_temperature How warm.\n\
             # TYPE pds_temperature gauge\n\
             pds_temperature -1.5\n"
        );
    }

    #[test]
    fn escaping() {
        let mut e = Encoder::new();
        e.family("m", Kind::Gauge, "back\\slash\nnew line \"quotes\" stay");
        e.sample("m", &[("l", "a\\b\"c\nd")], 0);
        assert_eq!(
            e.finish(),
            "# HELP m back\\\\slash\\nnew line \"quotes\" stay\n\
             # TYPE m gauge\n\
             m{l=\"a\\\\b\\\"c\\nd\"} 0\n"
        );
    }

    #[test]
    fn float_values() {
        assert_eq!(format_float(0.005), "0.005");
        assert_eq!(format_float(10.0), "10");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(1e-9), "0.000000001");
    }

    #[test]
    fn histograms_are_cumulative_and_end_in_inf() {
        let mut e = Encoder::new();
        e.family("lat_seconds", Kind::Histogram, "Latency.");
        e.histogram(
            "lat_seconds",
            &[("method", "m")],
            &[0.1, 1.0],
            &[2, 0, 1],
            2.75,
        );
        assert_eq!(
            e.finish(),
            "# HELP lat_seconds Latency.\n\
             # TYPE lat_seconds histogram\n\
             lat_seconds_bucket{method=\"m\",le=\"0.1\"} 2\n\
             lat_seconds_bucket{method=\"m\",le=\"1\"} 2\n\
             lat_seconds_bucket{method=\"m\",le=\"+Inf\"} 3\n\
             lat_seconds_sum{method=\"m\"} 2.75\n\
             lat_seconds_count{method=\"m\"} 3\n"
        );
    }
}
