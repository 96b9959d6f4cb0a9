//! Small CSV readers and writers for action sequences and rollouts, with line-numbered errors.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::EnvError;

/// A numeric CSV table: column names and rows of `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Header names, in file order.
    pub columns: Vec<String>,
    /// Data rows; each has `columns.len()` values.
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    /// Index of column `name`.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// All values of column `name`, or an error naming the columns present.
    pub fn column(&self, name: &str) -> Result<Vec<f64>, EnvError> {
        let i = self.col(name).ok_or_else(|| {
            EnvError::Io(format!("no column '{name}' in the CSV (columns: {})", self.columns.join(",")))
        })?;
        Ok(self.rows.iter().map(|r| r[i]).collect())
    }

    /// Columns `{prefix}{i}` for each `i` in `range` (`qpos0`, `qpos1`, ...), or an error naming the
    /// first one missing.
    pub fn columns(&self, prefix: &str, range: std::ops::Range<usize>) -> Result<Vec<Vec<f64>>, EnvError> {
        range.map(|i| self.column(&format!("{prefix}{i}"))).collect()
    }
}

/// Parses numeric CSV text (the `csv` crate); `origin` names the source in errors. Blank lines are skipped;
/// every other line must have as many fields as the header, each a finite number.
pub fn parse_table(text: &str, origin: &str) -> Result<Table, EnvError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let mut next = || -> Result<Option<(u64, csv::StringRecord)>, EnvError> {
        for r in records.by_ref() {
            let r = r.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                EnvError::Io(format!("{origin}:{line}: {e}"))
            })?;
            if r.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            return Ok(Some((r.position().map(|p| p.line()).unwrap_or(0), r)));
        }
        Ok(None)
    };
    let (_, header) = next()?.ok_or_else(|| EnvError::Io(format!("{origin}: the file is empty (expected a header line)")))?;
    let columns: Vec<String> = header.iter().map(|c| c.trim().trim_start_matches('\u{feff}').to_string()).collect();
    let mut rows = Vec::new();
    while let Some((lineno, fields)) = next()? {
        if fields.len() != columns.len() {
            return Err(EnvError::Io(format!(
                "{origin}:{lineno}: expected {} fields ({}) but found {}",
                columns.len(),
                columns.join(","),
                fields.len()
            )));
        }
        let mut row = Vec::with_capacity(fields.len());
        for (f, name) in fields.iter().zip(&columns) {
            let v: f64 = f.trim().parse().map_err(|_| {
                EnvError::Io(format!("{origin}:{lineno}: column '{name}': '{}' is not a number", f.trim()))
            })?;
            if !v.is_finite() {
                return Err(EnvError::Io(format!("{origin}:{lineno}: column '{name}': {v} is not finite")));
            }
            row.push(v);
        }
        rows.push(row);
    }
    Ok(Table { columns, rows })
}

/// CSV text (the `csv` crate) of a header and rows of already formatted fields (e.g. by [`g17`]).
pub fn to_csv(header: &[String], rows: &[Vec<String>]) -> Result<String, EnvError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| EnvError::Io(format!("cannot format CSV: {e}"));
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| EnvError::Io(format!("cannot format CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| EnvError::Io(format!("cannot format CSV: {e}")))
}

/// Reads a numeric CSV file (see [`parse_table`]).
pub fn read_table(path: &Path) -> Result<Table, EnvError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EnvError::Io(format!("cannot read {}: {e}", path.display())))?;
    parse_table(&text, &path.display().to_string())
}

/// Reads an action sequence: a header `action0,action1,...` (exactly `act_dim` columns named so)
/// and one row per step.
pub fn read_actions(path: &Path, act_dim: usize) -> Result<Vec<Vec<f32>>, EnvError> {
    let text = std::fs::read_to_string(path).map_err(|e| EnvError::Io(format!("cannot read {}: {e}", path.display())))?;
    parse_actions(&text, &path.display().to_string(), act_dim)
}

/// [`read_actions`] of a file's text; `origin` names it in errors.
pub fn parse_actions(text: &str, origin: &str, act_dim: usize) -> Result<Vec<Vec<f32>>, EnvError> {
    let t = parse_table(text, origin)?;
    let expected: Vec<String> = (0..act_dim).map(|i| format!("action{i}")).collect();
    if t.columns != expected {
        return Err(EnvError::Io(format!("{origin}:1: header must be '{}' but is '{}'", expected.join(","), t.columns.join(","))));
    }
    Ok(t.rows.iter().map(|r| r.iter().map(|v| *v as f32).collect()).collect())
}

/// Formats `v` with 17 significant digits (round-trips an `f64`), like `%.17g`; infinities are written
/// `inf` / `-inf` and NaN `NaN` (all three parse back with `str::parse::<f64>`).
pub fn g17(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.is_nan() {
        return "NaN".into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let exp = v.abs().log10().floor() as i32;
    if (-4..17).contains(&exp) {
        let decimals = (16 - exp).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    } else {
        let s = format!("{v:.16e}");
        let (m, e) = s.split_once('e').expect("exponent");
        let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.') } else { m };
        let e: i32 = e.parse().expect("exponent digits");
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

/// Column-name → values view of a table, for tests and tools.
pub fn columns_map(t: &Table) -> BTreeMap<String, Vec<f64>> {
    t.columns.iter().enumerate().map(|(i, c)| (c.clone(), t.rows.iter().map(|r| r[i]).collect())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_round_trips_and_matches_printf() {
        for v in [0.1, 1.0 / 3.0, -7.8233243360362604e-05, 123456.789, 1e-300, 2.5e20, -1.5] {
            let s = g17(v);
            assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
        }
        assert_eq!(g17(0.04), "0.040000000000000001");
        assert_eq!(g17(1.0), "1");
        assert_eq!(g17(-7.8233243360362604e-05), "-7.8233243360362604e-05");
    }

    #[test]
    fn g17_of_infinities_and_nan_is_written_not_a_panic() {
        // regression: g17(±inf) panicked at `expect("exponent")`
        assert_eq!(g17(f64::INFINITY), "inf");
        assert_eq!(g17(f64::NEG_INFINITY), "-inf");
        assert_eq!(g17(f64::INFINITY).parse::<f64>().unwrap(), f64::INFINITY);
        assert_eq!(g17(f64::NEG_INFINITY).parse::<f64>().unwrap(), f64::NEG_INFINITY);
        assert!(g17(f64::NAN).parse::<f64>().unwrap().is_nan());
        assert_eq!(g17(f64::MAX).parse::<f64>().unwrap(), f64::MAX);
        assert_eq!(g17(f64::MIN_POSITIVE).parse::<f64>().unwrap(), f64::MIN_POSITIVE);
    }

    #[test]
    fn written_csv_reads_back_and_blank_lines_are_skipped() {
        let header = vec!["a".to_string(), "b".to_string()];
        let rows = vec![vec![g17(0.1), g17(-2.5e-7)], vec![g17(3.0), g17(1e300)]];
        let text = to_csv(&header, &rows).unwrap();
        let t = parse_table(&format!("\u{feff}{text}\n  \n"), "w.csv").unwrap();
        assert_eq!(t.columns, header);
        assert_eq!(t.rows, vec![vec![0.1, -2.5e-7], vec![3.0, 1e300]]);
        // a blank line does not shift the line numbers of errors
        let e = parse_table("a,b\n\n1,2\n3\n", "x.csv").unwrap_err().to_string();
        assert!(e.contains("x.csv:4") && e.contains("expected 2 fields"), "{e}");
    }

    #[test]
    fn malformed_csv_reports_line_numbers() {
        let e = parse_table("action0,action1\n0.1,0.2\n0.3\n", "a.csv").unwrap_err().to_string();
        assert!(e.contains("a.csv:3") && e.contains("expected 2 fields"), "{e}");
        let e = parse_table("action0,action1\n0.1,zz\n", "a.csv").unwrap_err().to_string();
        assert!(e.contains("a.csv:2") && e.contains("'zz' is not a number"), "{e}");
        let e = parse_table("action0,action1\n0.1,nan\n", "a.csv").unwrap_err().to_string();
        assert!(e.contains("a.csv:2") && e.contains("not finite"), "{e}");
        assert!(parse_table("", "e.csv").is_err());
    }
}
