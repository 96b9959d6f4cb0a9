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
}

/// Parses numeric CSV text; `origin` names the source in errors. Blank lines are skipped;
/// every other line must have as many fields as the header, each a finite number.
pub fn parse_table(text: &str, origin: &str) -> Result<Table, EnvError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| EnvError::Io(format!("{origin}: the file is empty (expected a header line)")))?;
    let columns: Vec<String> = header.split(',').map(|c| c.trim().trim_start_matches('\u{feff}').to_string()).collect();
    let mut rows = Vec::new();
    for (i, line) in lines {
        let lineno = i + 1;
        let fields: Vec<&str> = line.split(',').collect();
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

/// Reads a numeric CSV file (see [`parse_table`]).
pub fn read_table(path: &Path) -> Result<Table, EnvError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EnvError::Io(format!("cannot read {}: {e}", path.display())))?;
    parse_table(&text, &path.display().to_string())
}

/// Reads an action sequence: a header `action0,action1,...` (exactly `act_dim` columns named so)
/// and one row per step.
pub fn read_actions(path: &Path, act_dim: usize) -> Result<Vec<Vec<f32>>, EnvError> {
    let t = read_table(path)?;
    let expected: Vec<String> = (0..act_dim).map(|i| format!("action{i}")).collect();
    if t.columns != expected {
        return Err(EnvError::Io(format!(
            "{}:1: header must be '{}' but is '{}'",
            path.display(),
            expected.join(","),
            t.columns.join(",")
        )));
    }
    Ok(t.rows.iter().map(|r| r.iter().map(|v| *v as f32).collect()).collect())
}

/// Formats `v` with 17 significant digits (round-trips an `f64`), like `%.17g`.
pub fn g17(v: f64) -> String {
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
