//! Order statistics of a sample.

/// The `q`-quantile (0 ≤ q ≤ 1), interpolating between neighbours.
///
/// # Panics
/// If `values` is empty.
pub fn quantile(mut values: Vec<f64>, q: f64) -> f64 {
    assert!(!values.is_empty(), "a quantile of nothing");
    values.sort_by(f64::total_cmp);
    let position = q * (values.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    values[below] + (values[above] - values[below]) * (position - below as f64)
}

pub fn median(values: Vec<f64>) -> f64 {
    quantile(values, 0.5)
}

/// Median and the 10th–90th percentile range.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        Summary {
            median: median(values.to_vec()),
            p10: quantile(values.to_vec(), 0.1),
            p90: quantile(values.to_vec(), 0.9),
        }
    }
}
